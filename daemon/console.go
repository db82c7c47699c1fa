package daemon

import (
	"context"
	"net/http"

	"custodian/service"
	"custodian/web"
)

// httpsHandler is what the HTTPS listener serves: the API under /v1/,
// /metrics for a metrics account, and the web console (package web) at /. The Unix socket serves the API only.
func (d *Daemon) httpsHandler(runCtx context.Context, api http.Handler) http.Handler {
	console := web.New(d.Service, web.Options{
		Go: func(fn func(ctx context.Context)) {
			// A run started in the console belongs to the daemon, like one
			// started through the API: shutdown cancels it and waits.
			d.wg.Add(1)
			go func() { defer d.wg.Done(); fn(runCtx) }()
		},
		OnError: func(path string, a service.Actor, code int, err error) {
			d.health.observe(err)
			d.Log.Warn().Str("path", path).Str("actor", a.Name).Int("status", code).Err(err).Msg("console request failed")
		},
	})
	mux := http.NewServeMux()
	mux.Handle("/v1/", api)
	mux.Handle("GET /metrics", d.metricsHandler())
	mux.Handle("/", console.Handler())
	return mux
}
