package sim

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// ErrorWriter answers a request with an error in a venue's own shape.
type ErrorWriter interface {
	WriteError(w http.ResponseWriter, e *exchange.Error)
}

// ReadRequest reads r into an exchange.Request with the raw path, query and
// body bytes exactly as received, the body capped at maxBody bytes.
func ReadRequest(w http.ResponseWriter, r *http.Request, maxBody int64) (*exchange.Request, *exchange.Error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "request body too large")
		}
		return nil, exchange.Errorf(exchange.ErrBadRequest, "cannot read body")
	}
	// The raw request target, not the decoded URL path, is what was signed.
	path, _, _ := strings.Cut(r.RequestURI, "?")
	if path == "" || path[0] != '/' {
		path = r.URL.EscapedPath()
	}
	return &exchange.Request{Method: r.Method, Path: path, RawQuery: r.URL.RawQuery, Header: r.Header, Body: body}, nil
}

// Reject logs a refused request in k, with its body when it was read (req
// not nil) and the API key it named, and answers with e through errs.
func (k *Kit) Reject(errs ErrorWriter, w http.ResponseWriter, r *http.Request, req *exchange.Request, key string, e *exchange.Error) {
	l := Logged{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), APIKey: key, Error: e.Message}
	if req != nil {
		l.Path, l.Body = req.Path, req.Body
	}
	k.Record(l)
	errs.WriteError(w, e)
}
