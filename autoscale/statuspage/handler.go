package statuspage

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
)

// MaxRefresh bounds the refresh query parameter, in seconds.
const MaxRefresh = 3600

// Handler serves the status of s with the events r keeps (r may be nil:
// the page then says events are not recorded).
//
// It answers GET and HEAD at whatever path it is mounted on:
//
//	?format=json   the Snapshot as JSON
//	(otherwise)    a plain HTML page, linking to the JSON
//	?refresh=N     the HTML page reloads itself every N seconds (1 to MaxRefresh)
//
// Each request reads the scaler afresh (see Read); nothing is cached. It
// has no access control of its own: mount it where only operators reach
// it, as net/http/pprof's handlers are.
func Handler(s *autoscale.Scaler, r *Recorder) http.Handler {
	return &handler{s: s, r: r}
}

type handler struct {
	s *autoscale.Scaler
	r *Recorder
}

func (h *handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if h.s == nil {
		http.Error(w, "statuspage: no scaler to show (Handler was given a nil *autoscale.Scaler)", http.StatusInternalServerError)
		return
	}
	q := req.URL.Query()
	refresh := 0
	if v := q.Get("refresh"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxRefresh {
			http.Error(w, fmt.Sprintf("refresh: want whole seconds from 1 to %d, got %q", MaxRefresh, v), http.StatusBadRequest)
			return
		}
		refresh = n
	}
	var (
		body        bytes.Buffer
		contentType string
		err         error
	)
	// Rendered to a buffer first: a failure then answers 500, not half a page.
	switch f := q.Get("format"); f {
	case "json":
		contentType = "application/json; charset=utf-8"
		enc := json.NewEncoder(&body)
		enc.SetIndent("", "  ")
		err = enc.Encode(Read(h.s, h.r))
	case "", "html":
		contentType = "text/html; charset=utf-8"
		err = page.Execute(&body, pageData{Snapshot: Read(h.s, h.r), Refresh: refresh})
	default:
		http.Error(w, fmt.Sprintf("format: want json or html, got %q", f), http.StatusBadRequest)
		return
	}
	if err != nil {
		http.Error(w, "statuspage: rendering the status failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", contentType)
	hdr.Set("Content-Length", strconv.Itoa(body.Len()))
	hdr.Set("Cache-Control", "no-store") // a status page is stale at once
	hdr.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(body.Bytes()) // a client gone away is not our error
}

// pageData is what the HTML template renders.
type pageData struct {
	Snapshot
	Refresh int
}

//go:embed page.html
var pageSource string

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"age": func(seconds int64) string {
		return (time.Duration(seconds) * time.Second).String()
	},
	"dollars": func(f float64) string { return fmt.Sprintf("$%.3f", f) },
	"states": func(states []StateCount) string {
		parts := make([]string, len(states))
		for i, sc := range states {
			parts[i] = fmt.Sprintf("%s %d", sc.State, sc.Count)
		}
		return strings.Join(parts, ", ")
	},
	"instances": func(e Event) string {
		ids := e.Instances
		if e.Instance != "" {
			ids = append([]string{e.Instance}, ids...)
		}
		return strings.Join(ids, " ")
	},
	"inputs": func(in map[string]string) string {
		parts := make([]string, 0, len(in))
		for _, k := range slices.Sorted(maps.Keys(in)) {
			parts = append(parts, k+"="+in[k])
		}
		return strings.Join(parts, " ")
	},
}).Parse(pageSource))
