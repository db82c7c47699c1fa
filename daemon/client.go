package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync/atomic"
	"syscall"

	"custodian/audit"
	"custodian/backup"
	"custodian/service"
	"custodian/transfer"
)

// ErrNotRunning: no daemon answers on the socket.
var ErrNotRunning = errors.New("custodian daemon is not running")

// Client talks to a running daemon over its Unix socket.
type Client struct {
	socket  string
	http    *http.Client
	warning atomic.Value // string: the daemon's last ledger warning
}

// NewClient returns a client for the daemon whose socket is at path.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}
	return &Client{socket: socket, http: &http.Client{Transport: tr}}
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://custodian"+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w (no answer on %s); start it with `custodian serve --config FILE`", ErrNotRunning, c.socket)
		}
		return nil, err
	}
	c.warning.Store(resp.Header.Get(WarningHeader))
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if p, ok := service.DecodeProblem(b); ok {
			return nil, service.ErrorFromProblem(p)
		}
		return nil, fmt.Errorf("daemon answered %s", resp.Status)
	}
	return resp, nil
}

// Warning returns the notice the daemon attached to its last answer while
// its ledger is damaged or cannot be written, or "".
func (c *Client) Warning() string {
	w, _ := c.warning.Load().(string)
	return w
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// Status returns the daemon's summary.
func (c *Client) Status(ctx context.Context) (service.Status, error) {
	var s service.Status
	return s, c.getJSON(ctx, "/v1/status", &s)
}

// Run asks the daemon to run a job now and waits for the result, passing
// progress reports to progress (may be nil).
func (c *Client) Run(ctx context.Context, job string, progress func(transfer.Progress)) (*transfer.RunResult, error) {
	resp, err := c.do(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(job)+"/run", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var m RunMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("reading the daemon's answer: %w", err)
		}
		switch {
		case m.Error != nil:
			return nil, service.ErrorFromProblem(*m.Error)
		case m.Result != nil:
			return m.Result, nil
		case m.Progress != nil && progress != nil:
			progress(*m.Progress)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("the daemon closed the connection before the run finished")
}

// Datasets lists every dataset's metadata.
func (c *Client) Datasets(ctx context.Context) ([]service.DatasetView, error) {
	var ds []service.DatasetView
	return ds, c.getJSON(ctx, "/v1/datasets", &ds)
}

// Dataset returns one dataset and its custody timeline.
func (c *Client) Dataset(ctx context.Context, id string) (service.DatasetDetail, error) {
	var d service.DatasetDetail
	return d, c.getJSON(ctx, "/v1/datasets/"+url.PathEscape(id), &d)
}

// Verify asks the daemon to verify its ledger, optionally against a kept
// checkpoint and the auditors' verifier key.
func (c *Client) Verify(ctx context.Context, opts audit.VerifyOptions) (*audit.Report, error) {
	b, err := json.Marshal(VerifyRequest{Checkpoint: string(opts.Checkpoint), VerifierKey: opts.VerifierKey})
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/audit/verify", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r audit.Report
	return &r, json.NewDecoder(resp.Body).Decode(&r)
}

// Export streams a consistent snapshot of the ledger to w.
func (c *Client) Export(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/audit/export", nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return io.Copy(w, resp.Body)
}

// Checkpoint returns the latest signed checkpoint and the verifier key.
func (c *Client) Checkpoint(ctx context.Context) (checkpoint, verifierKey string, err error) {
	var cp service.Checkpoint
	if err := c.getJSON(ctx, "/v1/audit/checkpoint", &cp); err != nil {
		return "", "", err
	}
	return cp.Checkpoint, cp.VerifierKey, nil
}

// Log returns up to limit events from index from.
func (c *Client) Log(ctx context.Context, from int64, limit int) ([]service.EventView, error) {
	var evs []service.EventView
	return evs, c.getJSON(ctx, fmt.Sprintf("/v1/audit/log?from=%d&limit=%d", from, limit), &evs)
}

// ScrubPlan returns the vault objects a scrub must check, as of the
// ledger's current size.
func (c *Client) ScrubPlan(ctx context.Context) (service.ScrubPlan, error) {
	var p service.ScrubPlan
	return p, c.getJSON(ctx, "/v1/vault/scrub-plan", &p)
}

// RecordScrub records a scrub's outcome on the ledger as a report by the
// calling account. The daemon refuses (and records the refusal of) a report
// that does not match the ledger; the error then names the rule.
func (c *Client) RecordScrub(ctx context.Context, rep service.ScrubReport) (index int64, err error) {
	var out service.Recorded
	return out.Index, c.postJSON(ctx, "/v1/vault/verified", rep, &out)
}

func (c *Client) postJSON(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodPost, path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

// Release accepts a held or quarantined dataset, with a reason.
func (c *Client) Release(ctx context.Context, id, reason string) (service.DatasetView, error) {
	var d service.DatasetView
	return d, c.postJSON(ctx, "/v1/datasets/"+url.PathEscape(id)+"/release", ActionRequest{Reason: reason}, &d)
}

// Repull pulls a quarantined dataset's file again, with a reason.
func (c *Client) Repull(ctx context.Context, id, reason string) (transfer.FileOutcome, error) {
	var o transfer.FileOutcome
	return o, c.postJSON(ctx, "/v1/datasets/"+url.PathEscape(id)+"/repull", ActionRequest{Reason: reason}, &o)
}

// Backup asks the daemon to write a backup into dir (absolute; the daemon,
// running as the service account, writes it) and waits for the result,
// passing progress reports to progress (may be nil).
func (c *Client) Backup(ctx context.Context, dir string, progress func(backup.Progress)) (*backup.Result, error) {
	b, err := json.Marshal(BackupRequest{Out: dir})
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/backup", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var m BackupMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("reading the daemon's answer: %w", err)
		}
		switch {
		case m.Error != nil:
			return nil, service.ErrorFromProblem(*m.Error)
		case m.Result != nil:
			return m.Result, nil
		case m.Progress != nil && progress != nil:
			progress(*m.Progress)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("the daemon closed the connection before the backup finished")
}
