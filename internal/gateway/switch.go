package gateway

// Stopped reports whether the panic switch is on (Stop without a Resume
// since).
func (g *Gateway) Stopped() bool { return g.stopped.Load() }

// OnResume registers f to run whenever Resume lifts the panic switch (serve
// clears the persisted panic state).
func (g *Gateway) OnResume(f func()) {
	g.hookMu.Lock()
	defer g.hookMu.Unlock()
	g.onResume = append(g.onResume, f)
}

func (g *Gateway) resumed() {
	g.hookMu.Lock()
	hooks := append([]func(){}, g.onResume...)
	g.hookMu.Unlock()
	for _, f := range hooks {
		f()
	}
}
