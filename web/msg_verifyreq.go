package web

// The messages of the verification page (verify.go), the request forms
// about data and the ledger (requests.go) and the audit log's order, kept
// apart and merged into the catalogs at start-up; TestCatalogs checks both
// languages have the same keys.
var msgEN3 = map[string]string{
	"verify.title":    "Ledger verification",
	"verify.running":  "Verifying; this page refreshes every 2 seconds.",
	"verify.progress": "Progress",
	"verify.count":    "%d of %d events",
	"verify.omitted":  "%d more problems were found but are not listed.",
	"verify.back":     "Back to the ledger",

	"datareq.title":            "Requests about this dataset",
	"datareq.help":             "A request is approved by others before it can be used; the service decides whether it may be filed.",
	"datareq.export_help":      "A copy of the dataset, encrypted to one recipient's age key; a supervisor approves.",
	"datareq.recipient":        "Recipient's age key (age1…)",
	"datareq.case":             "Case or file reference",
	"datareq.file_export":      "Request an export",
	"datareq.emergency_help":   "A read for a purpose other than the dataset's legal basis; the director approves.",
	"datareq.file_emergency":   "Request emergency use",
	"datareq.exceptional_help": "A read of quarantined or held data, whose completeness is not proven; a supervisor approves.",
	"datareq.file_exceptional": "Request an exceptional read",
	"datareq.cli":              "The console shows no record contents: an approved read or export is carried out by its requester with the command line (custodian dataset read, custodian export run).",
	"datareq.run_export":       "Once approved, its requester runs it with: custodian export run %s --out FILE",
	"datareq.run_read":         "Once approved, its requester reads with: custodian dataset read %s --purpose %s --case %s",

	"prune.title":   "Request a ledger prune",
	"prune.help":    "Events may be pruned only when older than five years and held by a recorded archive (custodian audit archive); two supervisors approve.",
	"prune.before":  "Prune the events before (date)",
	"prune.archive": "SHA-256 of the archive that holds them",
	"prune.file":    "Request the prune",

	"newrequest.help":        "Every kind of request, and where it is filed.",
	"newrequest.where":       "Filed",
	"newrequest.here":        "on this page (below)",
	"newrequest.on_dataset":  "from a dataset's page",
	"newrequest.on_handover": "on the hand-over page",
	"newrequest.on_ledger":   "on the ledger page",
	"newrequest.cli":         "with the command line",
	"newrequest.not_yours":   "not by your roles",
	"newrequest.account":     "Account request",

	"log.order":  "Order",
	"log.newest": "Newest first",
	"log.oldest": "Oldest first",
}

var msgZH3 = map[string]string{
	"verify.title":    "帳本驗證",
	"verify.running":  "驗證中；本頁每 2 秒自動更新。",
	"verify.progress": "進度",
	"verify.count":    "第 %d 筆，共 %d 筆事件",
	"verify.omitted":  "另有 %d 項問題未列出。",
	"verify.back":     "回到帳本",

	"datareq.title":            "此資料集的申請",
	"datareq.help":             "申請須經他人核准後方可使用；能否提出由系統判定。",
	"datareq.export_help":      "資料集的副本，以一位收件者的 age 金鑰加密；由主管核准。",
	"datareq.recipient":        "收件者 age 金鑰（age1…）",
	"datareq.case":             "案件或公文文號",
	"datareq.file_export":      "申請匯出",
	"datareq.emergency_help":   "為資料集法定目的以外之目的讀取；由機關首長核准。",
	"datareq.file_emergency":   "申請緊急使用",
	"datareq.exceptional_help": "讀取已隔離或暫緩、完整性未經證明的資料；由主管核准。",
	"datareq.file_exceptional": "申請例外讀取",
	"datareq.cli":              "本主控台不顯示任何紀錄內容：核准後的讀取或匯出，由申請人以命令列執行（custodian dataset read、custodian export run）。",
	"datareq.run_export":       "核准後，由申請人執行：custodian export run %s --out FILE",
	"datareq.run_read":         "核准後，由申請人讀取：custodian dataset read %s --purpose %s --case %s",

	"prune.title":   "申請清理帳本",
	"prune.help":    "僅得清理逾五年且已由紀錄在案之封存檔（custodian audit archive）保存的事件；須兩位主管核准。",
	"prune.before":  "清理此日期以前的事件",
	"prune.archive": "保存該等事件之封存檔 SHA-256",
	"prune.file":    "送出清理申請",

	"newrequest.help":        "各類申請及其提出之處。",
	"newrequest.where":       "提出之處",
	"newrequest.here":        "本頁（下方）",
	"newrequest.on_dataset":  "資料集頁面",
	"newrequest.on_handover": "移交頁面",
	"newrequest.on_ledger":   "帳本頁面",
	"newrequest.cli":         "命令列",
	"newrequest.not_yours":   "您的角色不可提出",
	"newrequest.account":     "帳號申請",

	"log.order":  "排序",
	"log.newest": "新到舊",
	"log.oldest": "舊到新",
}

func init() {
	for k, v := range msgEN3 {
		msgEN[k] = v
	}
	for k, v := range msgZH3 {
		msgZH[k] = v
	}
}
