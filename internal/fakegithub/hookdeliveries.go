package fakegithub

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kept is how long GitHub keeps a webhook's deliveries (github.com).
const Kept = 72 * time.Hour

// HookDelivery is one delivery of a webhook, as the fake lists and serves
// it: Headers and Payload are the request GitHub sent.
type HookDelivery struct {
	ID          int64
	GUID        string
	Event       string
	Action      string
	StatusCode  int // 0: no answer came (refused, timed out)
	Redelivery  bool
	DeliveredAt time.Time
	Headers     map[string]string
	Payload     json.RawMessage
}

// hookKey names a hook: "org/id", or "app" for the App's own webhook.
func hookKey(org string, id int64) string {
	if org == "" {
		return "app"
	}
	return org + "/" + strconv.FormatInt(id, 10)
}

// AddOrgHook registers an organization webhook with its URL.
func (g *GitHub) AddOrgHook(org string, id int64, hookURL string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.orgHooks == nil {
		g.orgHooks = map[string][]orgHook{}
	}
	g.orgHooks[org] = append(g.orgHooks[org], orgHook{id: id, url: hookURL})
}

type orgHook struct {
	id  int64
	url string
}

// AddHookDelivery records deliveries of org's hook id (org "": the App's
// webhook). A delivery without an ID gets the next one.
func (g *GitHub) AddHookDelivery(org string, id int64, ds ...HookDelivery) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.hookDeliveries == nil {
		g.hookDeliveries = map[string][]HookDelivery{}
	}
	k := hookKey(org, id)
	for _, d := range ds {
		if d.ID == 0 {
			g.lastDeliveryID++
			d.ID = g.lastDeliveryID
		}
		g.lastDeliveryID = max(g.lastDeliveryID, d.ID)
		g.hookDeliveries[k] = append(g.hookDeliveries[k], d)
	}
	list := g.hookDeliveries[k]
	sort.SliceStable(list, func(i, j int) bool { return newer(list[i], list[j]) })
}

// newer orders deliveries as GitHub lists them: newest first.
func newer(a, b HookDelivery) bool {
	if !a.DeliveredAt.Equal(b.DeliveredAt) {
		return a.DeliveredAt.After(b.DeliveredAt)
	}
	return a.ID > b.ID
}

// Redelivered returns the ids of the deliveries a redelivery was asked for.
func (g *GitHub) Redelivered() []int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int64(nil), g.redelivered...)
}

// OnGetDelivery, when set, is called with a delivery's GUID before the
// fake answers a request for it (a test's way to race it).
func (g *GitHub) OnGetDelivery(f func(guid string)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.onGet = f
}

// serveHooks answers the webhook routes: GET /orgs/{org}/hooks,
// GET /orgs/{org}/hooks/{id}/deliveries[/{delivery}], POST …/attempts,
// and the same under /app/hook (App JWT). It reports whether the path was
// one of them.
func (g *GitHub) serveHooks(w http.ResponseWriter, r *http.Request) bool {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var key string
	var rest []string
	switch {
	case len(parts) >= 3 && parts[0] == "app" && parts[1] == "hook" && parts[2] == "deliveries":
		if !g.appJWT(r) {
			apiError(w, http.StatusUnauthorized, "A JSON web token could not be decoded")
			return true
		}
		key, rest = "app", parts[3:]
	case len(parts) >= 3 && parts[0] == "orgs" && parts[2] == "hooks":
		if a := r.Header.Get("Authorization"); a != "token "+g.Token && a != "Bearer "+g.Token {
			apiError(w, http.StatusUnauthorized, "Bad credentials")
			return true
		}
		if len(parts) == 3 && r.Method == http.MethodGet {
			g.listOrgHooks(w, parts[1])
			return true
		}
		if len(parts) < 5 || parts[4] != "deliveries" {
			apiError(w, http.StatusNotFound, "Not Found")
			return true
		}
		id, _ := strconv.ParseInt(parts[3], 10, 64)
		key, rest = hookKey(parts[1], id), parts[5:]
	default:
		return false
	}
	switch {
	case len(rest) == 0 && r.Method == http.MethodGet:
		g.listDeliveries(w, r, key)
	case len(rest) == 1 && r.Method == http.MethodGet:
		g.getDelivery(w, key, rest[0])
	case len(rest) == 2 && rest[1] == "attempts" && r.Method == http.MethodPost:
		g.redeliver(w, key, rest[0])
	default:
		apiError(w, http.StatusNotFound, "Not Found")
	}
	return true
}

func (g *GitHub) listOrgHooks(w http.ResponseWriter, org string) {
	g.mu.Lock()
	hooks := g.orgHooks[org]
	g.mu.Unlock()
	out := []map[string]any{}
	for _, h := range hooks {
		out = append(out, map[string]any{"id": h.id, "type": "Organization", "name": "web", "active": true,
			"config": map[string]any{"url": h.url, "content_type": "json", "insecure_ssl": "0"}})
	}
	writeJSON(w, http.StatusOK, out)
}

// kept returns key's deliveries GitHub still keeps, newest first (kept
// sorted by AddHookDelivery). The slice is shared: read only.
func (g *GitHub) kept(key string) []HookDelivery {
	g.mu.Lock()
	defer g.mu.Unlock()
	edge := time.Now().Add(-Kept)
	all := g.hookDeliveries[key]
	return all[:sort.Search(len(all), func(i int) bool { return !all[i].DeliveredAt.After(edge) })]
}

// listDeliveries lists newest first; per_page up to 100 (default 30); the
// next page's cursor, an opaque token, comes in the Link header as GitHub
// gives it (rel="next" only while more are left).
func (g *GitHub) listDeliveries(w http.ResponseWriter, r *http.Request, key string) {
	all := g.kept(key)
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if per <= 0 {
		per = 30
	}
	per = min(per, 100)
	start := 0
	if c := r.URL.Query().Get("cursor"); c != "" {
		after, err := strconv.ParseInt(strings.TrimPrefix(c, "v1_"), 10, 64)
		if !strings.HasPrefix(c, "v1_") || err != nil {
			apiError(w, http.StatusUnprocessableEntity, "Invalid cursor")
			return
		}
		start = len(all)
		for i, d := range all {
			if d.ID == after {
				start = i + 1
				break
			}
		}
	}
	page := all[start:min(start+per, len(all))]
	if start+per < len(all) {
		u := *r.URL
		u.Scheme, u.Host = "http", r.Host
		q := u.Query()
		q.Set("per_page", strconv.Itoa(per))
		q.Set("cursor", "v1_"+strconv.FormatInt(page[len(page)-1].ID, 10))
		u.RawQuery = q.Encode()
		w.Header().Set("Link", `<`+u.String()+`>; rel="next"`)
	}
	out := make([]map[string]any, len(page))
	for i, d := range page {
		out[i] = listed(d)
	}
	writeJSON(w, http.StatusOK, out)
}

// listed is a delivery as GitHub lists it, without its request.
func listed(d HookDelivery) map[string]any {
	status := "OK"
	switch {
	case d.StatusCode == 0:
		status = "failed to connect to host"
	case d.StatusCode < 200 || d.StatusCode > 299:
		status = "Invalid HTTP Response: " + strconv.Itoa(d.StatusCode)
	}
	action := any(nil)
	if d.Action != "" {
		action = d.Action
	}
	return map[string]any{
		"id": d.ID, "guid": d.GUID, "delivered_at": d.DeliveredAt.UTC().Format(time.RFC3339),
		"redelivery": d.Redelivery, "duration": 0.27, "status": status, "status_code": d.StatusCode,
		"event": d.Event, "action": action, "installation_id": nil, "repository_id": 1,
		"throttled_at": nil,
	}
}

func (g *GitHub) find(key, id string) (HookDelivery, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return HookDelivery{}, false
	}
	kept := g.kept(key)
	for i := range kept { // newest first: recovery fetches recent ones
		if kept[i].ID == n {
			return kept[i], true
		}
	}
	return HookDelivery{}, false
}

func (g *GitHub) getDelivery(w http.ResponseWriter, key, id string) {
	d, ok := g.find(key, id)
	if !ok {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	g.mu.Lock()
	g.fetched = append(g.fetched, d.ID)
	onGet := g.onGet
	g.mu.Unlock()
	if onGet != nil {
		onGet(d.GUID)
	}
	out := listed(d)
	out["url"] = "https://github.example/"
	out["request"] = map[string]any{"headers": d.Headers, "payload": d.Payload}
	out["response"] = map[string]any{"headers": map[string]string{}, "payload": ""}
	writeJSON(w, http.StatusOK, out)
}

// Fetched returns the ids of the deliveries fetched one by one.
func (g *GitHub) Fetched() []int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int64(nil), g.fetched...)
}

// FailRedelivery makes every request to redeliver the attempt id answer
// 502, as GitHub does when it cannot queue one.
func (g *GitHub) FailRedelivery(id int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failRedelivery == nil {
		g.failRedelivery = map[int64]bool{}
	}
	g.failRedelivery[id] = true
}

func (g *GitHub) redeliver(w http.ResponseWriter, key, id string) {
	d, ok := g.find(key, id)
	if !ok {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	g.mu.Lock()
	if g.failRedelivery[d.ID] {
		g.mu.Unlock()
		apiError(w, http.StatusBadGateway, "Server Error")
		return
	}
	g.redelivered = append(g.redelivered, d.ID)
	g.mu.Unlock()
	writeJSON(w, http.StatusAccepted, map[string]any{})
}

// appJWT checks the request's App JWT: RS256, signed with AppKey, not
// expired.
func (g *GitHub) appJWT(r *http.Request) bool {
	jwt, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	parts := strings.Split(jwt, ".")
	if !ok || len(parts) != 3 || g.AppKey == nil {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err != nil || rsa.VerifyPKCS1v15(g.AppKey, crypto.SHA256, sum[:], sig) != nil {
		return false
	}
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct{ Exp int64 }
	return json.Unmarshal(claims, &c) == nil && time.Now().Unix() < c.Exp
}
