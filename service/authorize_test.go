package service

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"custodian/accounts"
)

// TestRoleMatrix enumerates every action × every role and compares
// Authorize with the matrix written out here, so that a new action or a
// changed row is a deliberate edit of this test.
func TestRoleMatrix(t *testing.T) {
	const (
		O = accounts.RoleOfficer
		S = accounts.RoleSupervisor
		A = accounts.RoleAuditor
		M = accounts.RoleAdmin
		D = accounts.RoleDirector
		C = accounts.RoleContractor
	)
	want := map[Action][]accounts.Role{
		ActStatus:       {O, S, A, M, D, C},
		ActRunJob:       {O, C},
		ActListDatasets: {O, S, A, C},
		ActShowDataset:  {O, S, A, D, C},
		ActRelease:      {O, C},
		ActRepull:       {O, C},
		ActReadLedger:   {S, A},
		ActVerifyLedger: {A},
		ActExportLedger: {A},
		ActScrubPlan:    {O, A, C},
		ActRecordScrub:  {O, C},

		ActSelf:               {O, S, A, M, D, C},
		ActReadAccounts:       {S, A, M, D},
		ActFileAccountRequest: {S, M},
		ActReadRequests:       {O, S, A, M, D, C},
		ActDecideRequest:      {S, D},
		ActCancelRequest:      {O, S, M, D, C},
		ActExecuteRequest:     {M},
		ActBackup:             {M},
		ActScrapeMetrics:      {accounts.RoleMetrics},
		ActPauseJob:           {O, S, C},

		ActRunReview:      {A},
		ActReadReview:     {A, S, D},
		ActCosignAccess:   {S},
		ActReadAccess:     {S, A},
		ActRecordTraining: {S, M},
		ActReadTraining:   {S, A, M, D},
		ActPruneLedger:    {A},

		ActUnseal:          {O},
		ActSeal:            {O, S, M, D, C},
		ActScrubVault:      {O, A, C},
		ActReadDataset:     {O, C},
		ActFileDataRequest: {O, C},
		ActRunExport:       {O, C},
		ActFileHandover:    {O, S},
		ActAcceptHandover:  {O},
		ActReadHandover:    {O, S, A, D, C},

		ActRequestDestruction: {O, C},
		ActDestroy:            {O, C},
		ActReadCertificate:    {O, S, A, D, C},
		ActRotateVault:        {O},
		ActExpiring:           {O, S, A, C},
		ActJobHistory:         {O, S, A, C},
	}
	if len(want) != len(Actions) {
		t.Fatalf("the expected matrix has %d actions, Actions %d: write the new action's row here", len(want), len(Actions))
	}
	for _, act := range Actions {
		row, ok := want[act]
		if !ok {
			t.Errorf("%s: no expected row", act)
		}
		for _, r := range accounts.Roles {
			exp := slices.Contains(row, r)
			err := Authorize(Actor{Name: "p", Roles: []accounts.Role{r}}, act, Resource{Kind: "daemon"})
			if (err == nil) != exp {
				t.Errorf("Authorize(%s, %s) = %v, want allowed=%v", r, act, err, exp)
			}
			if err != nil && (!errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "role:")) {
				t.Errorf("Authorize(%s, %s): refusal %v does not name the role rule", r, act, err)
			}
			if got := Permits([]accounts.Role{r}, act); got != exp {
				t.Errorf("Permits([%s], %s) = %v, want %v", r, act, got, exp)
			}
		}
	}
	// Contractors have exactly an officer's rights, except the
	// custodian's own: holding the vault key (unseal) and holding custody
	// (hand-over). Filing account requests neither does.
	custodianOnly := []Action{ActUnseal, ActRotateVault, ActFileHandover, ActAcceptHandover}
	for _, act := range Actions {
		if slices.Contains(custodianOnly, act) {
			if !Allowed(O, act) || Allowed(C, act) {
				t.Errorf("%s is the custodian's (an officer's), never a contractor's", act)
			}
			continue
		}
		if Allowed(O, act) != Allowed(C, act) {
			t.Errorf("%s: officer and contractor differ", act)
		}
	}
}

// TestMatrixFailsClosed: an action outside the table, an unknown role, no
// roles, no name and a restricted session are refused.
func TestMatrixFailsClosed(t *testing.T) {
	all := accounts.Roles
	for _, r := range all {
		if Allowed(r, "dataset.destroy") || Allowed(r, "") {
			t.Errorf("%s is allowed an unknown action", r)
		}
	}
	if err := Authorize(Actor{Name: "p", Roles: all}, "dataset.destroy", Resource{}); !errors.Is(err, ErrForbidden) {
		t.Errorf("unknown action: %v", err)
	}
	if err := Authorize(Actor{Name: "p", Roles: []accounts.Role{"root"}}, ActStatus, Resource{}); !errors.Is(err, ErrForbidden) {
		t.Errorf("unknown role: %v", err)
	}
	if err := Authorize(Actor{Name: "p"}, ActStatus, Resource{}); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("no roles: %v", err)
	}
	if err := Authorize(Actor{Roles: all}, ActStatus, Resource{}); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("no name: %v", err)
	}
	r := Actor{Name: "p", Roles: all, Restricted: "enrol a second factor first"}
	if err := Authorize(r, ActStatus, Resource{}); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "second factor") {
		t.Errorf("restricted session: %v", err)
	}
	if err := Authorize(r, ActSelf, Resource{}); err != nil {
		t.Errorf("restricted session, own account: %v", err)
	}
	if !Permits([]accounts.Role{accounts.RoleAdmin, accounts.RoleSupervisor}, ActReadLedger) || Permits([]accounts.Role{accounts.RoleAdmin, accounts.RoleDirector}, ActReadLedger) {
		t.Error("Permits must be the union of the roles' rights")
	}
}

// TestUnitBorder: an officer acts on their own unit's jobs and datasets
// only; a supervisor's rights are not bound to a unit.
func TestUnitBorder(t *testing.T) {
	off := Actor{Name: "olga", Roles: []accounts.Role{accounts.RoleOfficer}, Unit: "north"}
	if err := Authorize(off, ActRunJob, Resource{Kind: "job", ID: "daily", Unit: "north"}); err != nil {
		t.Errorf("own unit: %v", err)
	}
	err := Authorize(off, ActRunJob, Resource{Kind: "job", ID: "daily", Unit: "south"})
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "unit:") {
		t.Errorf("other unit: %v", err)
	}
	sup := Actor{Name: "sam", Roles: []accounts.Role{accounts.RoleSupervisor}, Unit: "north"}
	if err := Authorize(sup, ActShowDataset, Resource{Kind: "dataset", ID: "x", Unit: "south"}); err != nil {
		t.Errorf("supervisor, other unit: %v", err)
	}
}
