package bench

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// orderAck is the stub's answer: about 300 bytes shaped like Binance's
// order acknowledgement.
var orderAck = []byte(`{"symbol":"BTCUSDT","orderId":28457234,"orderListId":-1,"clientOrderId":"6gCrw2kRUAF9CvJDGP16IP","transactTime":1507725176595,"price":"50000.00000000","origQty":"0.00100000","executedQty":"0.00000000","cummulativeQuoteQty":"0.00000000","status":"NEW","timeInForce":"GTC","type":"LIMIT","side":"BUY"}`)

var ackLength = strconv.Itoa(len(orderAck))

// stub is the upstream every path ends at. It answers POST /api/v3/order
// with a fixed acknowledgement and does not verify signatures, so the
// direct and the proxied paths cost it the same. It counts the connections
// it accepts.
type stub struct {
	srv      *http.Server
	ln       net.Listener
	accepted atomic.Int64
	requests atomic.Int64
}

func startStub() (*stub, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &stub{ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v3/order", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<16))
		s.requests.Add(1)
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{ackLength}
		_, _ = w.Write(orderAck)
	})
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.accepted.Add(1)
			}
		},
	}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *stub) URL() string { return "http://" + s.ln.Addr().String() }

func (s *stub) Close() error { return s.srv.Close() }
