package notify

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"custodian/audit"
	"custodian/configs"
)

// Kind is what a notification is about.
type Kind string

// The kinds of notification. Approvals, accounts, retention and training
// are defined for the issues that add them; the daemon sends the others.
const (
	JobFailed       Kind = "job.failed"
	FileQuarantined Kind = "file.quarantined"
	FileHeld        Kind = "file.held"
	ApprovalWaiting Kind = "approval.waiting"
	ApprovalDecided Kind = "approval.decided"
	AccountLocked   Kind = "account.locked"
	RetentionDue    Kind = "retention.due"
	TrainingLow     Kind = "training.low"
	VerifyFailed    Kind = "verify.failed"
	CheckpointDaily Kind = "checkpoint.daily"
)

// Kinds lists every kind (equal to configs.NotifyKinds; a test checks).
var Kinds = []Kind{JobFailed, FileQuarantined, FileHeld, ApprovalWaiting, ApprovalDecided,
	AccountLocked, RetentionDue, TrainingLow, VerifyFailed, CheckpointDaily}

// Message is what a notification says. It holds metadata only: never
// record contents, and registry file names only when the configuration
// allows them (see IncludeFileNames).
type Message struct {
	Subject string `json:"subject"`
	Text    string `json:"text"`
	// Fields are the same facts for machines (the webhook's JSON), e.g.
	// job, dataset IDs.
	Fields map[string]string `json:"fields,omitempty"`
}

// Channels.
const (
	ChannelEmail   = "email"
	ChannelWebhook = "webhook"
)

// item is one delivery in the queue: one message to one recipient.
type item struct {
	ID        string    `json:"id"`
	Kind      Kind      `json:"kind"`
	Channel   string    `json:"channel"`
	Recipient string    `json:"recipient"`
	Message   Message   `json:"message"`
	Created   time.Time `json:"created"`
	Attempts  int       `json:"attempts"`
	Next      time.Time `json:"next"`
	LastError string    `json:"last_error,omitempty"`
}

// Options tune a Notifier; the zero value takes the defaults.
type Options struct {
	// Record records notify.delivered and notify.failed (the daemon's
	// ledger recorder). Nil records nothing.
	Record func(audit.Event)
	Log    zerolog.Logger
	// Initial and Max bound the backoff between attempts of one item;
	// GiveUpAfter is how long an item is retried before it is given up.
	Initial, Max, GiveUpAfter time.Duration
	// Timeout bounds one delivery attempt.
	Timeout time.Duration
	// Poll is how often the worker looks for due items when nothing wakes
	// it (a safety net; Notify and the backoff timer wake it).
	Poll time.Duration
	Now  func() time.Time
}

// Defaults of Options.
const (
	DefaultInitial     = 30 * time.Second
	DefaultMax         = 30 * time.Minute
	DefaultGiveUpAfter = 72 * time.Hour
	DefaultTimeout     = 30 * time.Second
	defaultPoll        = time.Minute
)

// Actor is the actor of the ledger events the notifier records.
const Actor = "system:custodian"

var (
	bucketQueue = []byte("queue")
	bucketSent  = []byte("last_queued")
)

// Notifier queues and delivers notifications. Its methods are safe for
// concurrent use.
type Notifier struct {
	db   *bolt.DB
	opt  Options
	cfg  atomic.Pointer[configs.Notify]
	wake chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
	// sending serialises deliveries (one worker, but Flush may run too).
	sending sync.Mutex
}

// Open opens (or creates, 0600) the queue at path. Deliveries start with
// Start.
func Open(path string, cfg configs.Notify, opt Options) (*Notifier, error) {
	if opt.Initial <= 0 {
		opt.Initial = DefaultInitial
	}
	if opt.Max < opt.Initial {
		opt.Max = max(DefaultMax, opt.Initial)
	}
	if opt.GiveUpAfter <= 0 {
		opt.GiveUpAfter = DefaultGiveUpAfter
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.Poll <= 0 {
		opt.Poll = defaultPoll
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("opening the notification queue %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketQueue, bucketSent} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("notification queue %s: %w", path, err)
	}
	n := &Notifier{db: db, opt: opt, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	n.SetConfig(cfg)
	return n, nil
}

// SetConfig replaces the routes and channels (a reload). Items already
// queued are delivered with the channel settings in force when they are
// sent.
func (n *Notifier) SetConfig(cfg configs.Notify) { n.cfg.Store(&cfg) }

// IncludeFileNames reports whether messages may name registry files.
func (n *Notifier) IncludeFileNames() bool { return n.cfg.Load().IncludeFileNames }

// recipients lists the (channel, recipient) pairs the routes give kind,
// each once, in route order.
func recipients(cfg *configs.Notify, kind Kind) [][2]string {
	var out [][2]string
	seen := map[[2]string]bool{}
	add := func(p [2]string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, r := range cfg.Routes {
		if !slices.Contains(r.Kinds, string(kind)) {
			continue
		}
		for _, e := range r.Email {
			add([2]string{ChannelEmail, e})
		}
		for _, w := range r.Webhook {
			add([2]string{ChannelWebhook, w})
		}
	}
	return out
}

// Notify queues m for every recipient routed for kind, durably, and wakes
// the worker. It returns the number of deliveries queued (0 when no route
// names kind).
func (n *Notifier) Notify(kind Kind, m Message) (int, error) {
	if !slices.Contains(Kinds, kind) {
		return 0, fmt.Errorf("unknown notification kind %q", kind)
	}
	to := recipients(n.cfg.Load(), kind)
	if len(to) == 0 {
		return 0, nil
	}
	now := n.opt.Now().UTC()
	err := n.db.Update(func(tx *bolt.Tx) error {
		q := tx.Bucket(bucketQueue)
		for _, r := range to {
			seq, err := q.NextSequence()
			if err != nil {
				return err
			}
			it := item{ID: "n-" + strconv.FormatUint(seq, 10), Kind: kind, Channel: r[0], Recipient: r[1],
				Message: m, Created: now, Next: now}
			b, err := json.Marshal(it)
			if err != nil {
				return err
			}
			if err := q.Put(seqKey(seq), b); err != nil {
				return err
			}
		}
		t, _ := now.MarshalBinary()
		return tx.Bucket(bucketSent).Put([]byte(kind), t)
	})
	if err != nil {
		return 0, fmt.Errorf("queueing a %s notification: %w", kind, err)
	}
	n.poke()
	return len(to), nil
}

// LastQueued is when a notification of kind was last queued (zero if
// never): the daily checkpoint uses it to send once a day across restarts.
func (n *Notifier) LastQueued(kind Kind) time.Time {
	var t time.Time
	_ = n.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketSent).Get([]byte(kind)); b != nil {
			_ = t.UnmarshalBinary(b)
		}
		return nil
	})
	return t
}

// Pending returns the number of deliveries still queued.
func (n *Notifier) Pending() int {
	var c int
	_ = n.db.View(func(tx *bolt.Tx) error { c = tx.Bucket(bucketQueue).Stats().KeyN; return nil })
	return c
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

func (n *Notifier) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Start starts the worker that delivers queued items. Its first pass
// attempts every queued item at once, whatever its backoff said: after a
// restart, what waited is tried again without delay.
func (n *Notifier) Start() {
	n.wg.Add(1)
	go n.work()
}

// Close stops the worker (an attempt in progress is cut short and retried
// after the next Open) and closes the queue. Pending items stay queued.
func (n *Notifier) Close() error {
	n.once.Do(func() { close(n.stop) })
	n.wg.Wait()
	return n.db.Close()
}

func (n *Notifier) work() {
	defer n.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-n.stop; cancel() }()
	defer cancel()
	for all := true; ; all = false {
		next := n.deliverDue(ctx, all)
		wait := n.opt.Poll
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(n.opt.Now()), time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-n.stop:
			t.Stop()
			return
		case <-n.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// deliverDue attempts every item due now (every item if all), in queue
// order, and returns when the next one is due (zero if none is queued).
func (n *Notifier) deliverDue(ctx context.Context, all bool) time.Time {
	n.sending.Lock()
	defer n.sending.Unlock()
	var due []item
	var next time.Time
	now := n.opt.Now()
	_ = n.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketQueue).ForEach(func(k, v []byte) error {
			var it item
			if err := json.Unmarshal(v, &it); err != nil {
				n.opt.Log.Error().Err(err).Msg("notification queue: unreadable item skipped")
				return nil
			}
			if all || !it.Next.After(now) {
				due = append(due, it)
			} else if next.IsZero() || it.Next.Before(next) {
				next = it.Next
			}
			return nil
		})
	})
	for _, it := range due {
		if ctx.Err() != nil {
			return next
		}
		if t := n.attempt(ctx, it); !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

// attempt delivers one item and updates the queue; it returns when the
// item is due again (zero if it left the queue).
func (n *Notifier) attempt(ctx context.Context, it item) time.Time {
	actx, cancel := context.WithTimeout(ctx, n.opt.Timeout)
	err := n.deliver(actx, it)
	cancel()
	if err != nil && ctx.Err() != nil {
		return time.Time{} // closing: the attempt does not count, the item stays
	}
	it.Attempts++
	log := n.opt.Log.With().Str("notification", it.ID).Str("kind", string(it.Kind)).Str("channel", it.Channel).
		Str("recipient", it.Recipient).Int("attempt", it.Attempts).Logger()
	key := seqKey(mustSeq(it.ID))
	details := map[string]string{"kind": string(it.Kind), "channel": it.Channel, "recipient": it.Recipient,
		"notification": it.ID, "attempts": strconv.Itoa(it.Attempts)}
	now := n.opt.Now()
	switch {
	case err == nil:
		n.remove(key)
		log.Info().Msg("notification delivered")
		n.record(audit.EvNotifyDelivered, details)
		return time.Time{}
	case now.Sub(it.Created) >= n.opt.GiveUpAfter:
		n.remove(key)
		details["error"] = err.Error()
		log.Error().Err(err).Msg("notification given up")
		n.record(audit.EvNotifyFailed, details)
		return time.Time{}
	}
	it.LastError = err.Error()
	it.Next = now.Add(n.backoff(it.Attempts))
	log.Warn().Err(err).Time("next_attempt", it.Next).Msg("notification not delivered; will retry")
	b, _ := json.Marshal(it)
	if uerr := n.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketQueue).Put(key, b) }); uerr != nil {
		log.Error().Err(uerr).Msg("notification queue: cannot record the attempt")
	}
	return it.Next
}

// backoff is the wait after the attempts-th failed attempt: Initial
// doubled per attempt, capped at Max, then jittered down by up to a half
// so that many items do not retry in step.
func (n *Notifier) backoff(attempts int) time.Duration {
	d := n.opt.Initial
	for i := 1; i < attempts && d < n.opt.Max; i++ {
		d *= 2
	}
	d = min(d, n.opt.Max)
	return d/2 + rand.N(d/2+1)
}

func (n *Notifier) remove(key []byte) {
	if err := n.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketQueue).Delete(key) }); err != nil {
		n.opt.Log.Error().Err(err).Msg("notification queue: cannot remove a finished item (it may be sent again)")
	}
}

func (n *Notifier) record(typ audit.EventType, details map[string]string) {
	if n.opt.Record != nil {
		n.opt.Record(audit.Event{Actor: Actor, Type: typ, Details: details})
	}
}

func mustSeq(id string) uint64 {
	v, _ := strconv.ParseUint(id[len("n-"):], 10, 64)
	return v
}

// deliver sends one item over its channel with the settings in force now.
func (n *Notifier) deliver(ctx context.Context, it item) error {
	cfg := n.cfg.Load()
	switch it.Channel {
	case ChannelEmail:
		if cfg.SMTP == nil {
			return errors.New("notify.smtp is no longer configured")
		}
		return sendMail(ctx, cfg.SMTP, it)
	case ChannelWebhook:
		w, ok := cfg.Webhook(it.Recipient)
		if !ok {
			return fmt.Errorf("webhook %q is no longer configured under notify.webhooks", it.Recipient)
		}
		return postWebhook(ctx, w, it)
	}
	return fmt.Errorf("unknown channel %q", it.Channel)
}
