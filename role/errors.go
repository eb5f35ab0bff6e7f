package role

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrInvalidConfig is wrapped by every error New and NewHTTP return for bad
// input; errors.As with a *ConfigError tells which field was wrong.
var ErrInvalidConfig = errors.New("invalid role config")

// ConfigError names the field of a role's configuration that is wrong.
type ConfigError struct {
	Role    string // the role's name as given
	Field   string // e.g. "Name", "HTTPConfig.Port"
	Problem string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("role %q: %s %s", e.Role, e.Field, e.Problem)
}

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// MaxNameLength is the longest role name: the name is written to a tag of
// each instance, and EC2 tag values hold at most 256 characters.
const MaxNameLength = 256

func validateName(name string) error {
	switch {
	case name == "":
		return &ConfigError{Role: name, Field: "Name", Problem: "must not be empty"}
	case len(name) > MaxNameLength:
		return &ConfigError{Role: name[:32] + "...", Field: "Name", Problem: fmt.Sprintf("must be at most %d bytes, got %d", MaxNameLength, len(name))}
	case !utf8.ValidString(name):
		return &ConfigError{Role: name, Field: "Name", Problem: "must be valid UTF-8"}
	}
	return nil
}
