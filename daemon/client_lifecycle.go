package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"custodian/service"
)

// Unseal gives the daemon the vault's passphrase; it keeps the private key
// in memory until sealed, idle or stopped.
func (c *Client) Unseal(ctx context.Context, passphrase []byte) (service.VaultState, error) {
	var st service.VaultState
	return st, c.postJSON(ctx, "/v1/vault/unseal", UnsealRequest{Passphrase: string(passphrase)}, &st)
}

// Seal has the daemon drop the vault's private key.
func (c *Client) Seal(ctx context.Context) (service.VaultState, error) {
	var st service.VaultState
	return st, c.postJSON(ctx, "/v1/vault/seal", struct{}{}, &st)
}

// ScrubVault has the unsealed daemon check every object and record it.
func (c *Client) ScrubVault(ctx context.Context) (service.VaultScrub, error) {
	var res service.VaultScrub
	return res, c.postJSON(ctx, "/v1/vault/scrub", struct{}{}, &res)
}

// FileDataRequest files an emergency-use or exceptional-read request.
func (c *Client) FileDataRequest(ctx context.Context, req service.DataRequest) (service.RequestView, error) {
	var q service.RequestView
	return q, c.postJSON(ctx, "/v1/requests/data", req, &q)
}

// FileExport files an export request.
func (c *Client) FileExport(ctx context.Context, req service.ExportRequest) (service.RequestView, error) {
	var q service.RequestView
	return q, c.postJSON(ctx, "/v1/requests/export", req, &q)
}

// FileHandover files a hand-over request with its inventory.
func (c *Client) FileHandover(ctx context.Context, req service.HandoverRequest) (service.RequestView, error) {
	var q service.RequestView
	return q, c.postJSON(ctx, "/v1/requests/handover", req, &q)
}

// AcceptHandover accepts an approved hand-over: custody moves.
func (c *Client) AcceptHandover(ctx context.Context, id string) (service.Handover, error) {
	var h service.Handover
	return h, c.postJSON(ctx, "/v1/handovers/"+url.PathEscape(id)+"/accept", struct{}{}, &h)
}

// Handover shows a hand-over's request, inventory and signatures.
func (c *Client) Handover(ctx context.Context, id string) (service.Handover, error) {
	var h service.Handover
	return h, c.getJSON(ctx, "/v1/handovers/"+url.PathEscape(id), &h)
}

// Download is what a read or an export delivered, as the daemon recorded
// it (from the response's trailers), and what this client received.
type Download struct {
	Outcome  string `json:"outcome"`
	SHA256   string `json:"sha256"` // recorded: of what the daemon delivered
	Bytes    int64  `json:"bytes"`
	Index    int64  `json:"index"`    // the ledger event
	Received int64  `json:"received"` // bytes this client wrote to its output
}

// ReadDataset streams dataset id's received bytes to w, for a purpose and
// a case. It fails unless the daemon recorded the read as complete and
// every byte reached w.
func (c *Client) ReadDataset(ctx context.Context, id string, req service.ReadRequest, w io.Writer) (Download, error) {
	return c.download(ctx, "/v1/datasets/"+url.PathEscape(id)+"/read", req, w)
}

// RunExport streams an approved export (age ciphertext) to w.
func (c *Client) RunExport(ctx context.Context, id string, w io.Writer) (Download, error) {
	return c.download(ctx, "/v1/exports/"+url.PathEscape(id)+"/run", struct{}{}, w)
}

func (c *Client) download(ctx context.Context, path string, in any, w io.Writer) (Download, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return Download{}, err
	}
	resp, err := c.do(ctx, http.MethodPost, path, bytes.NewReader(b))
	if err != nil {
		return Download{}, err
	}
	defer resp.Body.Close()
	var d Download
	d.Received, err = io.Copy(w, resp.Body)
	if err != nil {
		return d, fmt.Errorf("the stream broke after %d bytes: %w; what was written is incomplete", d.Received, err)
	}
	d.Outcome, d.SHA256 = resp.Trailer.Get(TrailerOutcome), resp.Trailer.Get(TrailerSHA256)
	d.Bytes, _ = strconv.ParseInt(resp.Trailer.Get(TrailerBytes), 10, 64)
	d.Index, _ = strconv.ParseInt(resp.Trailer.Get(TrailerIndex), 10, 64)
	switch {
	case d.Outcome == "":
		return d, fmt.Errorf("the daemon sent no outcome: the stream is incomplete (%d bytes)", d.Received)
	case d.Outcome != service.OutcomeComplete:
		return d, fmt.Errorf("%w: %s (recorded on the ledger, entry %d); what was written is not to be used", service.ErrConflict, d.Outcome, d.Index)
	case d.Received != d.Bytes:
		return d, fmt.Errorf("received %d bytes, the daemon delivered %d", d.Received, d.Bytes)
	}
	return d, nil
}
