package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"custodian/accounts"
	"custodian/audit"
)

// stateHandovers holds each hand-over request's inventory, by request ID.
const stateHandovers = "handovers"

// InventoryItem is one dataset of a hand-over's inventory (列冊): what is
// handed over, never its contents.
type InventoryItem struct {
	Dataset string `json:"dataset"`
	Job     string `json:"job"`
	Source  string `json:"source"`
	Name    string `json:"name"` // the remote file's name
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Records int64  `json:"records"`
	State   string `json:"state"`
}

// InventoryHash is the hex SHA-256 of an inventory's canonical JSON (the
// bytes stored with the request and named on the ledger).
func InventoryHash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// HandoverRequest asks that everything in From's custody pass to To.
type HandoverRequest struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Reason string `json:"reason"`
}

// Person is who signed a step of a hand-over.
type Person struct {
	Username string    `json:"username"`
	FullName string    `json:"full_name,omitempty"`
	At       time.Time `json:"at,omitzero"`
}

// Handover is a hand-over request with its inventory and signatures.
type Handover struct {
	Request         RequestView     `json:"request"`
	Unit            string          `json:"unit,omitempty"`
	From            Person          `json:"from"`
	To              Person          `json:"to"`
	RequestedBy     Person          `json:"requested_by"`
	ApprovedBy      *Person         `json:"approved_by,omitempty"`
	AcceptedBy      *Person         `json:"accepted_by,omitempty"`
	Inventory       []InventoryItem `json:"inventory"`
	InventorySHA256 string          `json:"inventory_sha256"`
	// Jobs are the jobs and sources of the inventory, and ConfiguredJobs
	// the jobs whose officer in the configuration is still From (new
	// files go to the job's officer: change jobs[].officer to To).
	Jobs           []string `json:"jobs"`
	Sources        []string `json:"sources"`
	ConfiguredJobs []string `json:"configured_jobs,omitempty"`
}

// inventoryOf lists every dataset in username's custody, by ID; a
// destroyed dataset holds nothing to hand over (its certificate stays on
// the ledger).
func inventoryOf(ds []audit.Dataset, username string) []InventoryItem {
	var out []InventoryItem
	for _, d := range ds {
		if d.Custodian != username || d.State == audit.StateDestroyed {
			continue
		}
		out = append(out, InventoryItem{Dataset: d.ID, Job: d.Job, Source: d.Source, Name: path.Base(d.RemotePath),
			Size: d.Size, SHA256: d.SHA256, Records: d.Records, State: string(d.State)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dataset < out[j].Dataset })
	return out
}

// FileHandover builds the inventory of everything in From's custody and
// files a hand-over request to To with it (the inventory is stored with
// the request; its SHA-256 is on the ledger). An officer hands over their
// own custody; a supervisor may file for an officer who is gone.
func (s *Service) FileHandover(ctx context.Context, a Actor, req HandoverRequest) (RequestView, error) {
	r := Resource{Kind: "account", ID: req.From}
	if err := s.authorize(a, ActFileHandover, r); err != nil {
		return RequestView{}, err
	}
	if err := s.open(); err != nil {
		return RequestView{}, err
	}
	if !slices.Contains(a.Roles, accounts.RoleSupervisor) && a.Name != req.From {
		return RequestView{}, s.refused(a, ActFileHandover, r, fmt.Errorf("%w: handover: an officer hands over their own custody; a supervisor files for someone else", ErrForbidden))
	}
	if err := checkReason(req.Reason); err != nil {
		return RequestView{}, err
	}
	if req.From == req.To {
		return RequestView{}, fmt.Errorf("%w: to: custody passes to another person (--to)", ErrInvalid)
	}
	from, err := s.account(req.From)
	if err != nil {
		return RequestView{}, err
	}
	to, err := s.account(req.To)
	if err != nil {
		return RequestView{}, err
	}
	switch {
	case from == nil:
		return RequestView{}, fmt.Errorf("%w: from: no account %q", ErrNotFound, req.From)
	case to == nil:
		return RequestView{}, fmt.Errorf("%w: to: no account %q", ErrNotFound, req.To)
	case to.State != accounts.StateActive || !to.HasRole(accounts.RoleOfficer):
		return RequestView{}, fmt.Errorf("%w: to: %s must be an active officer to take custody", ErrConflict, req.To)
	}
	ds, err := s.Ledger.Datasets()
	if err != nil {
		return RequestView{}, err
	}
	inv := inventoryOf(ds, req.From)
	if len(inv) == 0 {
		return RequestView{}, fmt.Errorf("%w: %s holds no dataset; there is nothing to hand over", ErrConflict, req.From)
	}
	b, err := json.Marshal(inv)
	if err != nil {
		return RequestView{}, err
	}
	hash := InventoryHash(b)
	now := s.now()
	var open string
	_ = s.Ledger.ViewState(stateRequests, func(r audit.Records) error {
		return r.ForEach(func(_ string, v []byte) error {
			var o accounts.Request
			if json.Unmarshal(v, &o) == nil && o.Kind == accounts.KindHandover && o.Details["from"] == req.From &&
				(o.State() == accounts.RequestPending || o.State() == accounts.RequestApproved) && now.Before(o.Expires) {
				open = o.ID
			}
			return nil
		})
	})
	if open != "" {
		return RequestView{}, fmt.Errorf("%w: hand-over %s of %s's custody is still open; cancel it or let it finish", ErrConflict, open, req.From)
	}
	q, err := s.fileRequest(a, accounts.KindHandover, req.To, req.Reason, map[string]string{
		"from": req.From, "to": req.To, "inventory_sha256": hash, "datasets": strconv.Itoa(len(inv))},
		func(tx *audit.Tx, q *accounts.Request) error {
			w, err := tx.State(stateHandovers)
			if err != nil {
				return err
			}
			return w.Put(q.ID, b)
		})
	if err != nil {
		return RequestView{}, err
	}
	return viewRequest(q), nil
}

// loadInventory reads a hand-over's stored inventory and checks it
// against the hash its request names.
func loadInventory(r audit.Records, q *accounts.Request) ([]InventoryItem, error) {
	b := r.Get(q.ID)
	if b == nil {
		return nil, fmt.Errorf("hand-over %s: no inventory stored", q.ID)
	}
	if got := InventoryHash(b); got != q.Details["inventory_sha256"] {
		return nil, fmt.Errorf("hand-over %s: the stored inventory's SHA-256 %s is not the %s filed", q.ID, got, q.Details["inventory_sha256"])
	}
	var inv []InventoryItem
	if err := json.Unmarshal(b, &inv); err != nil {
		return nil, fmt.Errorf("hand-over %s: inventory unreadable: %w", q.ID, err)
	}
	return inv, nil
}

// AcceptHandover is the receiving officer's acceptance of an approved
// hand-over: in one transaction, every listed dataset's custodian becomes
// the receiver (dataset.custody_transferred, state unchanged), the request
// is executed, and handover.completed records the inventory's hash and who
// requested, approved and accepted. A dataset that changed since the
// inventory was made (another state or custodian) stops the hand-over: a
// new inventory must be filed.
func (s *Service) AcceptHandover(ctx context.Context, a Actor, id string) (Handover, error) {
	_, err := s.stepRequest(a, ActAcceptHandover, id, func(tx *audit.Tx, q *accounts.Request, now time.Time) error {
		if q.Kind != accounts.KindHandover {
			return fmt.Errorf("%w: request %s is a %s request, not a hand-over", ErrConflict, id, q.Kind)
		}
		if err := q.Execute(a.Name, a.Roles, now); err != nil {
			return err
		}
		w, err := tx.State(stateHandovers)
		if err != nil {
			return err
		}
		inv, err := loadInventory(w, q)
		if err != nil {
			return err
		}
		from, to := q.Details["from"], q.Details["to"]
		for _, it := range inv {
			d, ok, err := tx.Dataset(it.Dataset)
			if err != nil {
				return err
			}
			if !ok || d.Custodian != from || string(d.State) != it.State || d.SHA256 != it.SHA256 {
				return fmt.Errorf("%w: dataset %s changed since the inventory was made (custodian %q, state %s); cancel %s and file a new hand-over",
					ErrConflict, it.Dataset, d.Custodian, d.State, id)
			}
			d.Custodian, d.UpdatedAt = to, now
			if _, err := tx.Append(attributed(a, audit.Event{Time: now, Actor: a.Name, Type: audit.EvDatasetCustodyTransferred, Job: d.Job, Dataset: &d,
				Details: map[string]string{"from": from, "to": to, "request": id}})); err != nil {
				return err
			}
		}
		if _, err := tx.Append(requestEvent(a, audit.EvRequestExecuted, q, "")); err != nil {
			return err
		}
		d := map[string]string{"request": id, "from": from, "to": to, "inventory_sha256": q.Details["inventory_sha256"],
			"datasets": strconv.Itoa(len(inv)), "requested_by": q.Requester, "requested_at": q.Created.UTC().Format(time.RFC3339),
			"accepted_by": a.Name, "accepted_at": now.UTC().Format(time.RFC3339)}
		var by []string
		for _, ap := range q.Approvals {
			by = append(by, ap.By)
			d["approved_at"] = ap.At.UTC().Format(time.RFC3339)
		}
		d["approved_by"] = strings.Join(by, " ")
		_, err = tx.Append(event(a, audit.EvHandoverCompleted, d))
		return err
	})
	if err != nil {
		return Handover{}, err
	}
	return s.handover(id)
}

// HandoverView shows a hand-over: its request, inventory and signatures.
func (s *Service) HandoverView(ctx context.Context, a Actor, id string) (Handover, error) {
	if err := s.authorize(a, ActReadHandover, Resource{Kind: "request", ID: id}); err != nil {
		return Handover{}, err
	}
	return s.handover(id)
}

func (s *Service) handover(id string) (Handover, error) {
	q, err := s.requestByID(id)
	if err != nil {
		return Handover{}, err
	}
	if q.Kind != accounts.KindHandover {
		return Handover{}, fmt.Errorf("%w: request %s is a %s request, not a hand-over", ErrNotFound, id, q.Kind)
	}
	var inv []InventoryItem
	if err := s.Ledger.ViewState(stateHandovers, func(r audit.Records) (err error) {
		inv, err = loadInventory(r, q)
		return err
	}); err != nil {
		return Handover{}, err
	}
	person := func(user string, at time.Time) Person {
		p := Person{Username: user, At: at}
		if acct, err := s.account(user); err == nil && acct != nil {
			p.FullName = acct.FullName
		}
		return p
	}
	cfg := s.config()
	h := Handover{Request: viewRequest(q), Unit: cfg.Unit, From: person(q.Details["from"], time.Time{}), To: person(q.Details["to"], time.Time{}),
		RequestedBy: person(q.Requester, q.Created), Inventory: inv, InventorySHA256: q.Details["inventory_sha256"]}
	if len(q.Approvals) > 0 {
		p := person(q.Approvals[0].By, q.Approvals[0].At)
		h.ApprovedBy = &p
	}
	if q.Executed != nil {
		p := person(q.Executed.By, q.Executed.At)
		h.AcceptedBy = &p
	}
	for _, it := range inv {
		if !slices.Contains(h.Jobs, it.Job) {
			h.Jobs = append(h.Jobs, it.Job)
		}
		if !slices.Contains(h.Sources, it.Source) {
			h.Sources = append(h.Sources, it.Source)
		}
	}
	for _, j := range cfg.Jobs {
		if j != nil && j.Officer == h.From.Username {
			h.ConfiguredJobs = append(h.ConfiguredJobs, j.Name)
		}
	}
	sort.Strings(h.Jobs)
	sort.Strings(h.Sources)
	return h, nil
}
