package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// HTTPSinkOptions configures an HTTP sink.
type HTTPSinkOptions struct {
	URL string
	// Header is added to every request (for example an Authorization
	// token). It is never logged.
	Header  http.Header
	Timeout time.Duration // per request; default 10 s
	Client  *http.Client  // default: a client with Timeout that follows no redirects
}

// HTTPSink is a Sink that POSTs each batch as JSON Lines
// (application/x-ndjson): the stored lines, newline-terminated, oldest
// first. Any 2xx status accepts the batch; anything else, redirects
// included, is an error and the batch is sent again later.
type HTTPSink struct {
	o HTTPSinkOptions
}

var _ Sink = (*HTTPSink)(nil)

// NewHTTPSink returns an HTTPSink posting to o.URL.
func NewHTTPSink(o HTTPSinkOptions) (*HTTPSink, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("audit: http sink: URL must be absolute http or https")
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{
			Timeout: o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	return &HTTPSink{o: o}, nil
}

// Send posts batch and returns nil once the receiver answered 2xx.
func (s *HTTPSink) Send(ctx context.Context, batch []Entry) error {
	if len(batch) == 0 {
		return nil
	}
	var body bytes.Buffer
	for _, e := range batch {
		body.Write(e.Line)
		body.WriteByte('\n')
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.o.URL, &body)
	if err != nil {
		return fmt.Errorf("audit: http sink: %w", err)
	}
	for k, vs := range s.o.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("X-Keywarden-Audit-First-Seq", strconv.FormatUint(batch[0].Seq, 10))
	req.Header.Set("X-Keywarden-Audit-Last-Seq", strconv.FormatUint(batch[len(batch)-1].Seq, 10))
	resp, err := s.o.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry credentials; do not repeat it
		}
		return fmt.Errorf("audit: http sink: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("audit: http sink: receiver answered %s", resp.Status)
	}
	return nil
}
