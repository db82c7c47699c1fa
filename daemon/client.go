package daemon

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"custodian/audit"
	"custodian/backup"
	"custodian/proof"
	"custodian/service"
	"custodian/transfer"
)

// ErrNotRunning: no daemon answers on the socket.
var ErrNotRunning = errors.New("custodian daemon is not running")

// Client talks to a running daemon over its Unix socket or over HTTPS,
// as the person whose session token it carries.
type Client struct {
	socket  string // "" over HTTPS
	base    string // URL prefix of the API
	http    *http.Client
	token   string
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
	return &Client{socket: socket, base: "http://custodian", http: &http.Client{Transport: tr}}
}

// NewHTTPSClient returns a client for the daemon's HTTPS listener at
// baseURL (https://host:port). roots, if not nil, are the certificates
// trusted for it (a self-signed certificate); nil means the system's.
func NewHTTPSClient(baseURL string, roots *x509.CertPool) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server: %q is not an https://HOST:PORT URL; the API is served over TLS only", baseURL)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}, ForceAttemptHTTP2: true}
	return &Client{base: strings.TrimSuffix(u.String(), "/"), http: &http.Client{Transport: tr}}, nil
}

// WithToken returns a copy of c that acts through session token.
func (c *Client) WithToken(token string) *Client {
	return &Client{socket: c.socket, base: c.base, http: c.http, token: token}
}

// Token is the session token c carries.
func (c *Client) Token() string { return c.token }

func (c *Client) where() string {
	if c.socket != "" {
		return c.socket
	}
	return c.base
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w (no answer on %s); start it with `custodian serve --config FILE`", ErrNotRunning, c.where())
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
	return readStream[transfer.Progress, transfer.RunResult](resp.Body, "run", progress)
}

// readStream reads an NDJSON answer of progress lines that ends with the
// result or an error (a run, a backup), passing progress to progress (may
// be nil).
func readStream[P, R any](body io.Reader, what string, progress func(P)) (*R, error) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var m struct {
			Progress *P               `json:"progress"`
			Result   *R               `json:"result"`
			Error    *service.Problem `json:"error"`
		}
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
	return nil, fmt.Errorf("the daemon closed the connection before the %s finished", what)
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

// Login starts a session; the result carries its token (use WithToken).
func (c *Client) Login(ctx context.Context, req service.LoginRequest) (service.LoginResult, error) {
	var r service.LoginResult
	return r, c.postJSON(ctx, "/v1/login", req, &r)
}

// Logout ends the client's session.
func (c *Client) Logout(ctx context.Context) error {
	var out map[string]string
	return c.postJSON(ctx, "/v1/logout", struct{}{}, &out)
}

// Whoami describes the session's account.
func (c *Client) Whoami(ctx context.Context) (service.Whoami, error) {
	var w service.Whoami
	return w, c.getJSON(ctx, "/v1/whoami", &w)
}

// ChangePassword changes the session's password; every session of the
// account ends.
func (c *Client) ChangePassword(ctx context.Context, old, pw string) error {
	var out map[string]string
	return c.postJSON(ctx, "/v1/account/password", PasswordRequest{Password: old, NewPassword: pw}, &out)
}

// EnrollTOTP starts a second-factor enrolment.
func (c *Client) EnrollTOTP(ctx context.Context) (service.TOTPEnrolment, error) {
	var e service.TOTPEnrolment
	return e, c.postJSON(ctx, "/v1/account/totp", struct{}{}, &e)
}

// ConfirmTOTP completes it with the app's first code.
func (c *Client) ConfirmTOTP(ctx context.Context, code string) error {
	var out map[string]string
	return c.postJSON(ctx, "/v1/account/totp/confirm", CodeRequest{Code: code}, &out)
}

// Accounts lists every account.
func (c *Client) Accounts(ctx context.Context) ([]service.AccountView, error) {
	var l []service.AccountView
	return l, c.getJSON(ctx, "/v1/accounts", &l)
}

// Account shows one account.
func (c *Client) Account(ctx context.Context, username string) (service.AccountView, error) {
	var a service.AccountView
	return a, c.getJSON(ctx, "/v1/accounts/"+url.PathEscape(username), &a)
}

// FileAccountRequest files an account request.
func (c *Client) FileAccountRequest(ctx context.Context, req service.AccountRequest) (service.RequestView, error) {
	var q service.RequestView
	return q, c.postJSON(ctx, "/v1/requests/account", req, &q)
}

// Requests lists requests, only open ones if pending.
func (c *Client) Requests(ctx context.Context, pending bool) ([]service.RequestView, error) {
	var l []service.RequestView
	return l, c.getJSON(ctx, fmt.Sprintf("/v1/requests?pending=%t", pending), &l)
}

// Request shows one request.
func (c *Client) Request(ctx context.Context, id string) (service.RequestView, error) {
	var q service.RequestView
	return q, c.getJSON(ctx, "/v1/requests/"+url.PathEscape(id), &q)
}

// Approve approves a request, with a reason.
func (c *Client) Approve(ctx context.Context, id, reason string) (service.RequestView, error) {
	var q service.RequestView
	return q, c.postJSON(ctx, "/v1/requests/"+url.PathEscape(id)+"/approve", ActionRequest{Reason: reason}, &q)
}

// Reject rejects a request, with a reason.
func (c *Client) Reject(ctx context.Context, id, reason string) (service.RequestView, error) {
	var q service.RequestView
	return q, c.postJSON(ctx, "/v1/requests/"+url.PathEscape(id)+"/reject", ActionRequest{Reason: reason}, &q)
}

// CancelRequest cancels one's own request.
func (c *Client) CancelRequest(ctx context.Context, id string) (service.RequestView, error) {
	var q service.RequestView
	return q, c.postJSON(ctx, "/v1/requests/"+url.PathEscape(id)+"/cancel", struct{}{}, &q)
}

// ExecuteRequest carries out an approved account request.
func (c *Client) ExecuteRequest(ctx context.Context, id string) (service.Executed, error) {
	var x service.Executed
	return x, c.postJSON(ctx, "/v1/requests/"+url.PathEscape(id)+"/execute", struct{}{}, &x)
}

// SearchEvents returns one page of the events that match q.
func (c *Client) SearchEvents(ctx context.Context, q service.EventQuery) (service.EventPage, error) {
	v := url.Values{}
	v.Set("from", strconv.FormatInt(q.From, 10))
	v.Set("limit", strconv.Itoa(q.Limit))
	for k, s := range map[string]string{"actor": q.Actor, "dataset": q.Dataset, "type": q.Type, "purpose": q.Purpose, "unit": q.Unit} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.Format(time.RFC3339Nano))
	}
	if q.Desc {
		v.Set("order", "desc")
	}
	if q.Before != 0 {
		v.Set("before", strconv.FormatInt(q.Before, 10))
	}
	var p service.EventPage
	return p, c.getJSON(ctx, "/v1/audit/events?"+v.Encode(), &p)
}

// ProveEvent returns event index with its inclusion proof.
func (c *Client) ProveEvent(ctx context.Context, index int64) (proof.Inclusion, error) {
	var p proof.Inclusion
	return p, c.getJSON(ctx, "/v1/audit/proofs/inclusion?index="+strconv.FormatInt(index, 10), &p)
}

// ProveConsistency returns the consistency proof between two checkpoints
// of the ledger; an empty newCP means the current one.
func (c *Client) ProveConsistency(ctx context.Context, oldCP, newCP string) (proof.Consistency, error) {
	var p proof.Consistency
	return p, c.postJSON(ctx, "/v1/audit/proofs/consistency", ConsistencyRequest{Old: oldCP, New: newCP}, &p)
}

// KeptCheckpoints lists the checkpoints the daemon kept.
func (c *Client) KeptCheckpoints(ctx context.Context) ([]proof.Kept, error) {
	var ks []proof.Kept
	return ks, c.getJSON(ctx, "/v1/audit/checkpoints", &ks)
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
	return readStream[backup.Progress, backup.Result](resp.Body, "backup", progress)
}
