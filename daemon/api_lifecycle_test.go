package daemon

import (
	"context"
	"io"

	"custodian/service"
)

// The fake API's lifecycle methods (routes_test.go).

func (f *fakeAPI) Unseal(context.Context, service.Actor, []byte) (service.VaultState, error) {
	f.call("Unseal")
	return service.VaultState{}, nil
}
func (f *fakeAPI) Seal(context.Context, service.Actor) (service.VaultState, error) {
	f.call("Seal")
	return service.VaultState{}, nil
}
func (f *fakeAPI) ScrubVault(context.Context, service.Actor) (service.VaultScrub, error) {
	f.call("ScrubVault")
	return service.VaultScrub{}, nil
}
func (f *fakeAPI) ReadDataset(context.Context, service.Actor, string, service.ReadRequest, io.Writer) (service.ReadResult, error) {
	f.call("ReadDataset")
	return service.ReadResult{Outcome: service.OutcomeComplete}, nil
}
func (f *fakeAPI) FileDataRequest(context.Context, service.Actor, service.DataRequest) (service.RequestView, error) {
	f.call("FileDataRequest")
	return service.RequestView{}, nil
}
func (f *fakeAPI) FileExport(context.Context, service.Actor, service.ExportRequest) (service.RequestView, error) {
	f.call("FileExport")
	return service.RequestView{}, nil
}
func (f *fakeAPI) RunExport(context.Context, service.Actor, string, io.Writer) (service.ExportResult, error) {
	f.call("RunExport")
	return service.ExportResult{Outcome: service.OutcomeComplete}, nil
}
func (f *fakeAPI) FileHandover(context.Context, service.Actor, service.HandoverRequest) (service.RequestView, error) {
	f.call("FileHandover")
	return service.RequestView{}, nil
}
func (f *fakeAPI) AcceptHandover(context.Context, service.Actor, string) (service.Handover, error) {
	f.call("AcceptHandover")
	return service.Handover{}, nil
}
func (f *fakeAPI) HandoverView(context.Context, service.Actor, string) (service.Handover, error) {
	f.call("HandoverView")
	return service.Handover{}, nil
}

func init() {
	for k, v := range map[string]string{
		"POST /v1/vault/unseal":          `{"passphrase": "not the passphrase"}`,
		"POST /v1/vault/seal":            `{}`,
		"POST /v1/vault/scrub":           `{}`,
		"POST /v1/datasets/{id}/read":    `{"purpose": "vaccination", "case": "C-1"}`,
		"POST /v1/requests/data":         `{"kind": "emergency-use", "dataset": "ds-000000000001", "purpose": "emergency", "case": "C-1", "reason": "a reason long enough"}`,
		"POST /v1/requests/export":       `{"dataset": "ds-000000000001", "recipient": "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p", "purpose": "vaccination", "case": "C-1", "reason": "a reason long enough"}`,
		"POST /v1/exports/{id}/run":      `{}`,
		"POST /v1/requests/handover":     `{"from": "officer.a", "to": "someone.else", "reason": "a reason long enough"}`,
		"POST /v1/handovers/{id}/accept": `{}`,
	} {
		routeBodies[k] = v
	}
	lifecycleMethods = map[service.Action][]string{
		service.ActUnseal: {"Unseal"}, service.ActSeal: {"Seal"}, service.ActScrubVault: {"ScrubVault"},
		service.ActReadDataset: {"ReadDataset"}, service.ActFileDataRequest: {"FileDataRequest", "FileExport"},
		service.ActRunExport: {"RunExport"}, service.ActFileHandover: {"FileHandover"},
		service.ActAcceptHandover: {"AcceptHandover"}, service.ActReadHandover: {"HandoverView"},
	}
}

// lifecycleMethods are the service methods of the lifecycle's actions,
// for TestRoutesAreThin.
var lifecycleMethods map[service.Action][]string
