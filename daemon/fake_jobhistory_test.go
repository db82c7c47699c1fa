package daemon

import (
	"context"

	"custodian/service"
)

// The fake API's job history (routes_test.go).

// jobHistoryMethods are the service methods of the job history route, by
// action.
var jobHistoryMethods = map[service.Action][]string{
	service.ActJobHistory: {"JobHistory"},
}

func (f *fakeAPI) JobHistory(context.Context, service.Actor, string) ([]service.JobChange, error) {
	f.call("JobHistory")
	return nil, nil
}
