package manager

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrInvalidConfig is wrapped by every error the constructors and setters of
// this package return for bad input; errors.As with a *ConfigError tells
// which field was wrong.
var ErrInvalidConfig = errors.New("invalid manager config")

// ConfigError names the field of a manager's configuration that is wrong.
type ConfigError struct {
	Kind    string // "fixed", "queue", "target-tracking" or "forecast"
	Name    string // the manager's name as given
	Field   string // e.g. "JobsPerUnit"
	Problem string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("manager: %s %q: %s %s", e.Kind, e.Name, e.Field, e.Problem)
}

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// MaxNameLength is the longest manager name: the name is written to the
// grant tag of the manager's servers, and EC2 tag values hold at most 256
// characters.
const MaxNameLength = 256

func validateName(kind, name string) error {
	switch {
	case name == "":
		return &ConfigError{Kind: kind, Name: name, Field: "Name", Problem: "must not be empty"}
	case len(name) > MaxNameLength:
		return &ConfigError{Kind: kind, Name: name[:32] + "...", Field: "Name",
			Problem: fmt.Sprintf("must be at most %d bytes, got %d", MaxNameLength, len(name))}
	case !utf8.ValidString(name):
		return &ConfigError{Kind: kind, Name: name, Field: "Name", Problem: "must be valid UTF-8"}
	}
	return nil
}

// validateRequestParts checks the parts of a Request that a shipped manager
// takes from its configuration.
func validateRequestParts(kind, name string, market MarketPreference, zoneMinimums map[string]int) error {
	if market < AnyMarket || market > SpotOnly {
		return &ConfigError{Kind: kind, Name: name, Field: "Market", Problem: fmt.Sprintf("is not a known preference: %d", market)}
	}
	for zone, n := range zoneMinimums {
		if zone == "" {
			return &ConfigError{Kind: kind, Name: name, Field: "ZoneMinimums", Problem: "has an empty zone name"}
		}
		if n < 0 {
			return &ConfigError{Kind: kind, Name: name, Field: "ZoneMinimums", Problem: fmt.Sprintf("must not be negative, got %d for %s", n, zone)}
		}
	}
	return nil
}
