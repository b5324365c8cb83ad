package server

import (
	"github.com/keywarden/keywarden/internal/gateway"
	"github.com/keywarden/keywarden/internal/upstream"
)

// newUpstream returns the client the gateway forwards with: HTTP/1.1
// keep-alive connections used on the request's own goroutine
// (internal/upstream), tuned by the same options as gateway.NewTransport.
func newUpstream(o gateway.TransportOptions) *upstream.Client {
	return upstream.New(upstream.Options{MaxConnsPerHost: o.MaxIdlePerHost, TLS: o.TLS, Dial: o.Dial})
}
