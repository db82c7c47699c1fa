package service

import (
	"encoding/json"

	"custodian/accounts"
)

// carriedOutBy names the action that carries out each kind of request
// that is not carried out with `custodian request execute` (ActExecuteRequest).
var carriedOutBy = map[accounts.Kind]Action{
	accounts.KindDestruction:     ActDestroy,
	accounts.KindHandover:        ActAcceptHandover,
	accounts.KindExport:          ActRunExport,
	accounts.KindEmergencyUse:    ActReadDataset,
	accounts.KindExceptionalRead: ActReadDataset,
}

// CarriedOutBy names the action that carries out a request of kind k
// ("" for the kinds carried out with ActExecuteRequest).
func CarriedOutBy(k accounts.Kind) Action { return carriedOutBy[k] }

// MayCarryOut reports whether a may carry out request q now with act: a
// destruction run (ActDestroy), a hand-over's acceptance
// (ActAcceptHandover), an export (ActRunExport), or the read an
// emergency use or exceptional read allows (ActReadDataset). It asks the role matrix, then the kind's rule of
// the approvals engine, tried on a copy (as MayStep does), so that the
// console shows the button only to the one person the rule admits. The
// service decides again when the step is taken.
func (s *Service) MayCarryOut(a Actor, q RequestView, act Action) bool {
	if carriedOutBy[q.Kind] != act || a.Restricted != "" || !Permits(a.Roles, act) {
		return false
	}
	b, err := json.Marshal(q.Request)
	if err != nil {
		return false
	}
	var c accounts.Request
	if err := json.Unmarshal(b, &c); err != nil {
		return false
	}
	return c.Execute(a.Name, a.Roles, s.now()) == nil
}
