// Package web is custodian's web console: server-rendered pages for the
// people who never touch a shell (supervisors, who approve; auditors, who
// review) and for officers and admins, served by the daemon on its HTTPS
// listener only (never on the Unix socket), at / beside the API's /v1/.
//
// Design:
//
//   - The console is a transport, like the JSON API. Every page calls the
//     same service methods the API calls, through the [Service] interface,
//     and applies no rule of its own: whether a page or a button is shown
//     is asked of the service (service.Permits, the one role matrix;
//     Service.MayStep, the approvals engine tried on a copy; the custody
//     table for release and re-pull), and every step is decided again by
//     the service when it is taken. Each route names the action it needs
//     (routes); the route asks Service.Allow first, so typing the URL of a
//     page one may not use is refused and recorded like an API refusal.
//   - Metadata only: no page shows registry record contents. Datasets are
//     listed by their metadata (names, sizes, digests, counts, states);
//     proofs are downloaded as the proof files the CLI writes.
//   - GET never changes anything; every change is a POST form. Cross-site
//     POSTs are refused by net/http's CrossOriginProtection (Sec-Fetch-Site
//     and Origin), so no token is needed in the forms.
//   - The session is the service's: the token from Service.Login lives in a
//     __Host- cookie (Secure, HttpOnly, SameSite=Strict) and is looked up
//     with Service.Authenticate on every request. Logging out is a POST.
//   - Clause 五(三), nothing left on the screen: every page carries the
//     session's idle limit in a data attribute; the one static script
//     (static/app.js, allowed by the Content-Security-Policy as 'self')
//     blanks the page when it passes and goes to the login page. The
//     service ends the session at the same limit anyway.
//   - Every response carries a strict Content-Security-Policy (no inline
//     script or style), HSTS, frame denial, no referrer and no-store.
//   - Templates and static files are embedded (go:embed): no CDN, no
//     external fonts. Strings come from a message catalog, one plain map
//     per language (zh-TW by default, English selectable); zh-TW dates are
//     Republic of China dates.
//   - The data's later life (lifecycle.go): destruction (filed from a
//     dataset's page, approved on a page that lists every dataset's size,
//     digest and custodian, run by its requester with the key unsealed
//     into the daemon, never with a passphrase typed here), its
//     certificate, hand-over inventories, sampling reviews, training and
//     consistency proofs. Buttons that carry out a request ask
//     Service.MayCarryOut, the approvals engine on a copy. Certificates,
//     inventories and the review report print on A4. The review report is
//     the service's own HTML; its one style element is allowed by its
//     SHA-256 in that response's policy (ReportCSP), nothing inline else.
//   - Long work (a job run, a verification of the whole ledger) belongs to
//     the daemon, not to the request: it is started by a POST, and its
//     page, its starter's only, polls (meta refresh, no script) until it
//     ends; a verification's page shows a <progress> of the events
//     checked, then the report (verify.go). The refresh asks for the
//     page with ?auto=1, checked with Service.Peek: a page refreshing
//     itself is not the person's use and does not keep the session alive;
//     each page's idle timer is what is left of the session
//     (Actor.IdleEnds), not a fresh idle limit.
//   - Every kind of request can be filed (requests.go): account requests
//     on /requests/new, which lists every kind and where it is filed;
//     destruction, export, emergency use and exceptional read on a
//     dataset's page; hand-over on /handovers/new; a ledger prune on the
//     ledger page. A read or an export is carried out with the CLI only:
//     no bytes of a dataset pass through a page.
//   - The audit log lists newest first (service.EventQuery.Desc), or
//     oldest first; its CSV follows the page's order.
package web
