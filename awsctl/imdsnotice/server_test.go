package imdsnotice_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

const (
	tokenPath      = "/latest/api/token"
	metadataPrefix = "/latest/meta-data/"
	ttlHeader      = "X-aws-ec2-metadata-token-ttl-seconds"
	tokenHeader    = "X-aws-ec2-metadata-token"
	testToken      = "AQAEAOaZ0ExampleSessionToken=="
)

// answer is what the metadata service says for one path; status 0 is 200.
type answer struct {
	status int
	body   string
}

// metadataServer is an instance metadata service that insists on IMDSv2:
// documents are served only to requests carrying the session token handed
// out by the token PUT.
type metadataServer struct {
	mu      sync.Mutex
	docs    map[string]answer // path under /latest/meta-data/
	gets    map[string]int
	tokens  int
	badReqs []string // requests the real service would refuse
}

func newMetadataServer(instanceID string) *metadataServer {
	return &metadataServer{
		docs: map[string]answer{"instance-id": {body: instanceID}},
		gets: map[string]int{},
	}
}

func (s *metadataServer) set(path string, a answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs[path] = a
}

func (s *metadataServer) clear(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.docs, path)
}

// getCount is how many GETs path has had.
func (s *metadataServer) getCount(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets[path]
}

func (s *metadataServer) refused() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.badReqs...)
}

func (s *metadataServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	refuse := func(status int, why string) {
		s.badReqs = append(s.badReqs, fmt.Sprintf("%s %s: %s", r.Method, r.URL.Path, why))
		http.Error(w, http.StatusText(status), status)
	}
	switch {
	case r.URL.Path == tokenPath:
		if r.Method != http.MethodPut {
			refuse(http.StatusMethodNotAllowed, "token must be PUT")
			return
		}
		ttl, err := strconv.Atoi(r.Header.Get(ttlHeader))
		if err != nil || ttl < 1 || ttl > 21600 {
			refuse(http.StatusBadRequest, "bad token TTL")
			return
		}
		s.tokens++
		w.Header().Set(ttlHeader, strconv.Itoa(ttl))
		fmt.Fprint(w, testToken)
	case strings.HasPrefix(r.URL.Path, metadataPrefix):
		if r.Method != http.MethodGet {
			refuse(http.StatusMethodNotAllowed, "metadata must be GET")
			return
		}
		if r.Header.Get(tokenHeader) != testToken {
			refuse(http.StatusUnauthorized, "no session token")
			return
		}
		path := strings.TrimPrefix(r.URL.Path, metadataPrefix)
		s.gets[path]++
		a, ok := s.docs[path]
		if !ok {
			// The real service answers an HTML page with the 404.
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<title>404 - Not Found</title>")
			return
		}
		if a.status != 0 && a.status != http.StatusOK {
			http.Error(w, http.StatusText(a.status), a.status)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, a.body)
	default:
		refuse(http.StatusNotFound, "unknown path")
	}
}
