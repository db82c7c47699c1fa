package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"custodian/configs"
)

// SignatureHeader carries a webhook's signature: "t=UNIX,v1=HEX", where
// HEX is HMAC-SHA256, keyed with the webhook's secret, over "UNIX.BODY".
const SignatureHeader = "Custodian-Signature"

// MinSecret is the shortest webhook secret accepted, in bytes.
const MinSecret = 16

// Payload is the JSON body of a webhook request.
type Payload struct {
	ID      string            `json:"id"`
	Kind    Kind              `json:"kind"`
	Time    time.Time         `json:"time"`
	Subject string            `json:"subject"`
	Text    string            `json:"text"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// Sign returns the signature header value of body at time t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a signature header against body: the receiver's
// side, also used by the tests. It returns the signed time. Receivers
// should also refuse a time too far from their clock (replays).
func VerifySignature(secret []byte, header string, body []byte) (time.Time, error) {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return time.Time{}, fmt.Errorf("malformed %s header %q", SignatureHeader, header)
	}
	want := Sign(secret, time.Unix(sec, 0), body)
	if !hmac.Equal([]byte(want), []byte(header)) {
		return time.Time{}, fmt.Errorf("%s does not match the body", SignatureHeader)
	}
	return time.Unix(sec, 0), nil
}

// postWebhook POSTs the item as JSON, signed. Any 2xx answer is delivery;
// redirects are not followed.
func postWebhook(ctx context.Context, w configs.NotifyWebhook, it item) error {
	secret, err := readSecret("notify.webhooks "+w.Name+" secret_file", w.SecretFile)
	if err != nil {
		return err
	}
	if len(secret) < MinSecret {
		return fmt.Errorf("webhook %s: the secret in %s is shorter than %d bytes", w.Name, w.SecretFile, MinSecret)
	}
	body, err := json.Marshal(Payload{ID: it.ID, Kind: it.Kind, Time: it.Created, Subject: it.Message.Subject,
		Text: it.Message.Text, Fields: it.Message.Fields})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "custodian")
	req.Header.Set(SignatureHeader, Sign(secret, time.Now(), body))
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if strings.HasPrefix(w.URL, "https:") {
		if tr.TLSClientConfig, err = tlsConfig(req.URL.Hostname(), w.CAFile); err != nil {
			return err
		}
	}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook %s answered %s", w.Name, resp.Status)
	}
	return nil
}
