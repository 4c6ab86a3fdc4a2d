// sysdecode decodes $SYS answers and events into nats-server's own Go types
// (Debian's golang-github-nats-io-nats-server-dev, 2.9.10, built in GOPATH
// mode by scripts/sysdecode.sh), the types the `nats` CLI decodes them with,
// so tests/nats_cli.rs checks warden's JSON against code warden did not
// write.
//
//	sysdecode < answers.jsonl
//
// Each input line is {"kind": K, "label": L, "payload": <the message>}, or
// for a snappy-compressed answer (nats-server compresses when asked, as the
// CLI asks) {..., "payload": "<hex>", "snappy": true}.
// Each output line is "ok<TAB>L" or "fail<TAB>L<TAB>why"; the exit status is
// 1 if any line failed.
//
// Strict, where the CLI is lenient (encoding/json ignores what it does not
// know and leaves what is missing at zero): a field the Go type does not
// have fails (DisallowUnknownFields), a mistyped field fails (the decoder),
// and a field the CLI shows that must be set (ids, names, versions, times,
// the counters that cannot be zero while the asker is connected) fails when
// missing or zero. The few fields 2.9.10's types lack but that are meant to
// be there are listed in `extras`, each with its type and why; they are
// checked and taken out before the strict decoding.
package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats-server/v2/server"
)

// ServerID is nats-server 2.10's answer to $SYS.REQ.SERVER.<id>.IDZ
// (server/events.go at v2.10.0, unchanged through 2.15): 2.9.10 has no IDZ.
type ServerID struct {
	Name string `json:"name"`
	Host string `json:"host"`
	ID   string `json:"id"`
}

// UserInfo is nats-server 2.10's answer to $SYS.REQ.USER.INFO
// (server/events.go at v2.10.0; 2.11 adds account_name and user_name, both
// omitempty): 2.9.10 has no USER.INFO.
type UserInfo struct {
	UserID      string              `json:"user"`
	Account     string              `json:"account"`
	Permissions *server.Permissions `json:"permissions,omitempty"`
	Expires     time.Duration       `json:"expires,omitempty"`
}

// response is server.ServerAPIResponse with a concrete Data, as nats-server's
// own ServerAPIConnzResponse is for CONNZ.
type response[T any] struct {
	Server *server.ServerInfo `json:"server"`
	Data   *T                 `json:"data,omitempty"`
	Error  *server.ApiError   `json:"error,omitempty"`
}

// extra is a field a 2.9.10 type lacks that an answer may carry: where
// (object keys; "*" is every element of an array), its JSON type, and why.
type extra struct {
	path []string
	kind string // "string", "number", "array", "object"
	why  string
}

// extras: the fields taken out before decoding, by kind.
var extras = map[string][]extra{
	"varz": {
		{[]string{"data", "warden_version"}, "string",
			"warden's own version; `version` is the nats-server version it speaks (2.9.10)"},
		{[]string{"data", "accounts"}, "number", "warden: the number of accounts it hosts"},
		{[]string{"data", "warden"}, "object", "warden: its security counters (logins, refusals, TLS failures)"},
	},
	"routez": {
		{[]string{"data", "routes", "*", "remote_name"}, "string",
			"nats-server 2.10+'s RouteInfo.RemoteName, which the nats CLI's newer types have"},
		{[]string{"data", "unreachable"}, "array", "warden: the servers of the mesh it cannot reach"},
	},
	"accountz": {
		{[]string{"data", "account_detail", "pending_responses"}, "array",
			"warden's count of service-import requests awaiting a response"},
		{[]string{"data", "account_detail", "rate_limit"}, "object",
			"warden: the account's publish rate_limit and the time it held connections back"},
	},
	"accinfo": {
		{[]string{"data", "pending_responses"}, "array",
			"warden's count of service-import requests awaiting a response"},
		{[]string{"data", "rate_limit"}, "object",
			"warden: the account's publish rate_limit and the time it held connections back"},
	},
	"connz": {{[]string{"data", "connections", "*", "rate_held"}, "string",
		"warden: how long a connection over its publish rate_limit was not read"}},
}

// strip removes the extras of kind from payload, failing if one has
// another JSON type. Numbers stay as written (json.Number).
func strip(kind string, payload []byte) ([]byte, error) {
	list := extras[kind]
	if len(list) == 0 {
		return payload, nil
	}
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	var v interface{}
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	for _, e := range list {
		if err := remove(v, e.path, e); err != nil {
			return nil, err
		}
	}
	return json.Marshal(v)
}

func remove(v interface{}, path []string, e extra) error {
	if path[0] == "*" {
		list, _ := v.([]interface{})
		for _, item := range list {
			if err := remove(item, path[1:], e); err != nil {
				return err
			}
		}
		return nil
	}
	object, ok := v.(map[string]interface{})
	if !ok {
		return nil
	}
	field, ok := object[path[0]]
	if !ok {
		return nil
	}
	if len(path) > 1 {
		return remove(field, path[1:], e)
	}
	okType := false
	switch e.kind {
	case "string":
		_, okType = field.(string)
	case "number":
		_, okType = field.(json.Number)
	case "array":
		_, okType = field.([]interface{})
	case "object":
		_, okType = field.(map[string]interface{})
	}
	if !okType {
		return fmt.Errorf("%s: not a JSON %s (%s)", strings.Join(e.path, "."), e.kind, e.why)
	}
	delete(object, path[0])
	return nil
}

// checks collects the fields that are missing or wrong.
type checks struct{ missing []string }

func (c *checks) need(ok bool, field string) {
	if !ok {
		c.missing = append(c.missing, field)
	}
}

func (c *checks) serverInfo(s *server.ServerInfo) {
	c.need(s != nil, "server")
	if s == nil {
		return
	}
	c.need(s.Name != "", "server.name")
	c.need(s.Host != "", "server.host")
	c.need(s.ID != "", "server.id")
	c.need(s.Version != "", "server.ver")
	c.need(s.Seq > 0, "server.seq")
	c.need(!s.Time.IsZero(), "server.time")
}

func (c *checks) stats(s *server.ServerStats) {
	c.need(!s.Start.IsZero(), "statsz.start")
	c.need(s.Mem > 0, "statsz.mem")
	c.need(s.Cores > 0, "statsz.cores")
	c.need(s.Connections > 0, "statsz.connections")
	c.need(s.TotalConnections > 0, "statsz.total_connections")
	c.need(s.ActiveAccounts > 0, "statsz.active_accounts")
	c.need(s.NumSubs > 0, "statsz.subscriptions")
	for i, r := range s.Routes {
		c.need(r.ID > 0, fmt.Sprintf("statsz.routes[%d].rid", i))
	}
}

func (c *checks) typed(e server.TypedEvent, want string) {
	c.need(e.Type == want, "type "+want)
	c.need(e.ID != "", "id")
	c.need(!e.Time.IsZero(), "timestamp")
}

func (c *checks) client(ci *server.ClientInfo) {
	c.need(ci.Start != nil && !ci.Start.IsZero(), "client.start")
	c.need(ci.Host != "", "client.host")
	c.need(ci.ID > 0, "client.id")
	c.need(ci.Account != "", "client.acc")
}

func (c *checks) accountStat(a *server.AccountStat, where string) {
	c.need(a.Account != "", where+".acc")
	c.need(a.TotalConns == a.Conns+a.LeafNodes, where+".total_conns = conns + leafnodes")
}

func (c *checks) connz(z *server.Connz) {
	c.need(z.ID != "", "data.server_id")
	c.need(!z.Now.IsZero(), "data.now")
	c.need(z.NumConns == len(z.Conns), "data.num_connections = len(connections)")
	c.need(z.Total >= z.NumConns, "data.total >= num_connections")
	for i, ci := range z.Conns {
		at := fmt.Sprintf("data.connections[%d].", i)
		c.need(ci.Cid > 0, at+"cid")
		c.need(ci.IP != "", at+"ip")
		c.need(ci.Port > 0, at+"port")
		c.need(!ci.Start.IsZero(), at+"start")
		c.need(!ci.LastActivity.IsZero(), at+"last_activity")
		c.need(ci.Uptime != "", at+"uptime")
		c.need(ci.Idle != "", at+"idle")
	}
}

// decoders: what each kind decodes into, and what must be set in it.
var decoders = map[string]func(*json.Decoder, *checks) error{
	// $SYS.REQ.SERVER.PING, $SYS.REQ.SERVER.<id|PING>.STATSZ, $SYS.SERVER.<id>.STATSZ
	"statsz": func(d *json.Decoder, c *checks) error {
		var m server.ServerStatsMsg
		if err := d.Decode(&m); err != nil {
			return err
		}
		c.serverInfo(&m.Server)
		c.stats(&m.Stats)
		return nil
	},
	"varz": api(func(v *server.Varz, c *checks) {
		c.need(v.ID != "", "data.server_id")
		c.need(v.Name != "", "data.server_name")
		c.need(v.Version != "", "data.version")
		c.need(v.Proto > 0, "data.proto")
		c.need(v.Host != "", "data.host")
		c.need(v.Port > 0, "data.port")
		c.need(v.MaxConn > 0, "data.max_connections")
		c.need(v.PingInterval > 0, "data.ping_interval")
		c.need(v.MaxPingsOut > 0, "data.ping_max")
		c.need(v.AuthTimeout > 0, "data.auth_timeout")
		c.need(v.MaxControlLine > 0, "data.max_control_line")
		c.need(v.MaxPayload > 0, "data.max_payload")
		c.need(v.MaxPending > 0, "data.max_pending")
		c.need(v.WriteDeadline > 0, "data.write_deadline")
		c.need(!v.Start.IsZero(), "data.start")
		c.need(!v.Now.IsZero(), "data.now")
		c.need(v.Uptime != "", "data.uptime")
		c.need(v.Mem > 0, "data.mem")
		c.need(v.Cores > 0, "data.cores")
		c.need(v.Connections > 0, "data.connections")
		c.need(v.TotalConnections > 0, "data.total_connections")
		c.need(v.Subscriptions > 0, "data.subscriptions")
		c.need(!v.ConfigLoadTime.IsZero(), "data.config_load_time")
		c.need(v.SystemAccount != "", "data.system_account")
		c.need(v.Cluster.Name != "", "data.cluster.name")
		c.need(v.Cluster.Port > 0, "data.cluster.cluster_port")
		c.need(v.Routes > 0, "data.routes")
	}),
	// $SYS.REQ.SERVER.<id>.CONNZ, $SYS.REQ.ACCOUNT.<acc>.CONNZ, $SYS.REQ.ACCOUNT.PING.CONNZ
	"connz": api(func(z *server.Connz, c *checks) {
		c.connz(z)
		c.need(z.NumConns > 0, "data.connections")
	}),
	"subsz": api(func(z *server.Subsz, c *checks) {
		c.need(z.ID != "", "data.server_id")
		c.need(!z.Now.IsZero(), "data.now")
		c.need(z.SublistStats != nil && z.NumSubs > 0, "data.num_subscriptions")
		// Not sid and cid: warden's own subscriptions (cid 0) have no sid,
		// nor does the interest it learned from routes (docs/nats-cli.md).
		for i, s := range z.Subs {
			at := fmt.Sprintf("data.subscriptions_list[%d].", i)
			c.need(s.Subject != "", at+"subject")
			c.need(s.Account != "", at+"account")
		}
	}),
	"routez": api(func(z *server.Routez, c *checks) {
		c.need(z.ID != "", "data.server_id")
		c.need(!z.Now.IsZero(), "data.now")
		c.need(z.NumRoutes > 0 && z.NumRoutes == len(z.Routes), "data.num_routes = len(routes) > 0")
		for i, r := range z.Routes {
			at := fmt.Sprintf("data.routes[%d].", i)
			c.need(r.Rid > 0, at+"rid")
			c.need(r.RemoteID != "", at+"remote_id")
			c.need(r.IP != "", at+"ip")
			c.need(r.Port > 0, at+"port")
			c.need(!r.Start.IsZero(), at+"start")
			c.need(r.Uptime != "", at+"uptime")
		}
	}),
	"accountz": api(func(z *server.Accountz, c *checks) {
		c.need(z.ID != "", "data.server_id")
		c.need(!z.Now.IsZero(), "data.now")
		c.need(z.SystemAccount != "", "data.system_account")
		c.need(len(z.Accounts) > 0 || z.Account != nil, "data.accounts or data.account_detail")
		if z.Account != nil {
			c.accountInfo(z.Account, "data.account_detail.")
		}
	}),
	"leafz": api(func(z *server.Leafz, c *checks) {
		c.need(z.ID != "", "data.server_id")
		c.need(!z.Now.IsZero(), "data.now")
		c.need(z.NumLeafs == len(z.Leafs), "data.leafnodes = len(leafs)")
	}),
	"healthz": api(func(h *server.HealthStatus, c *checks) {
		c.need(h.Status == "ok", "data.status ok")
	}),
	// $SYS.REQ.ACCOUNT.<acc>.INFO
	"accinfo": api(func(a *server.AccountInfo, c *checks) { c.accountInfo(a, "data.") }),
	// $SYS.REQ.ACCOUNT.<acc>.STATZ, $SYS.REQ.ACCOUNT.PING.STATZ
	"accstatz": api(func(z *server.AccountStatz, c *checks) {
		c.need(z.ID != "", "data.server_id")
		c.need(!z.Now.IsZero(), "data.now")
		c.need(len(z.Accounts) > 0, "data.account_statz")
		for i, a := range z.Accounts {
			c.accountStat(a, fmt.Sprintf("data.account_statz[%d]", i))
		}
	}),
	"userinfo": api(func(u *UserInfo, c *checks) {
		c.need(u.UserID != "", "data.user")
		c.need(u.Account != "", "data.account")
	}),
	// $SYS.REQ.SERVER.<id>.IDZ: a bare ServerID, no envelope.
	"idz": func(d *json.Decoder, c *checks) error {
		var id ServerID
		if err := d.Decode(&id); err != nil {
			return err
		}
		c.need(id.Name != "", "name")
		c.need(id.Host != "", "host")
		c.need(id.ID != "", "id")
		return nil
	},
	// An answer that must be an error (a request warden refuses).
	"error": func(d *json.Decoder, c *checks) error {
		var r server.ServerAPIResponse
		if err := d.Decode(&r); err != nil {
			return err
		}
		c.serverInfo(r.Server)
		c.need(r.Data == nil, "no data")
		c.need(r.Error != nil && r.Error.Code >= 400 && r.Error.Description != "", "error.code, error.description")
		return nil
	},
	// $SYS.ACCOUNT.<acc>.CONNECT
	"connect": func(d *json.Decoder, c *checks) error {
		var e server.ConnectEventMsg
		if err := d.Decode(&e); err != nil {
			return err
		}
		c.typed(e.TypedEvent, server.ConnectEventMsgType)
		c.serverInfo(&e.Server)
		c.client(&e.Client)
		return nil
	},
	// $SYS.ACCOUNT.<acc>.DISCONNECT, $SYS.SERVER.<id>.CLIENT.AUTH.ERR
	"disconnect": func(d *json.Decoder, c *checks) error {
		var e server.DisconnectEventMsg
		if err := d.Decode(&e); err != nil {
			return err
		}
		c.typed(e.TypedEvent, server.DisconnectEventMsgType)
		c.serverInfo(&e.Server)
		c.client(&e.Client)
		c.need(e.Client.Stop != nil && !e.Client.Stop.IsZero(), "client.stop")
		c.need(e.Reason != "", "reason")
		return nil
	},
	// $SYS.ACCOUNT.<acc>.SERVER.CONNS
	"accconns": func(d *json.Decoder, c *checks) error {
		var e server.AccountNumConns
		if err := d.Decode(&e); err != nil {
			return err
		}
		c.typed(e.TypedEvent, server.AccountNumConnsMsgType)
		c.serverInfo(&e.Server)
		c.accountStat(&e.AccountStat, "")
		return nil
	},
}

func (c *checks) accountInfo(a *server.AccountInfo, at string) {
	c.need(a.AccountName != "", at+"account_name")
	c.need(!a.LastUpdate.IsZero(), at+"update_time")
	c.need(a.Complete, at+"complete")
	c.need(a.Sublist != nil, at+"sublist_stats")
}

// api decodes a ServerAPIResponse whose data is a T, which must be there.
func api[T any](check func(*T, *checks)) func(*json.Decoder, *checks) error {
	return func(d *json.Decoder, c *checks) error {
		var r response[T]
		if err := d.Decode(&r); err != nil {
			return err
		}
		c.serverInfo(r.Server)
		if r.Error != nil {
			return fmt.Errorf("error answer: %d %s", r.Error.Code, r.Error.Description)
		}
		c.need(r.Data != nil, "data")
		if r.Data != nil {
			check(r.Data, c)
		}
		return nil
	}
}

type item struct {
	Kind    string          `json:"kind"`
	Label   string          `json:"label"`
	Payload json.RawMessage `json:"payload"`
	Snappy  bool            `json:"snappy"`
}

// inflate reads a compressed payload as the CLI does (s2 reads snappy).
func inflate(payload json.RawMessage) ([]byte, error) {
	var text string
	if err := json.Unmarshal(payload, &text); err != nil {
		return nil, err
	}
	raw, err := hex.DecodeString(text)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(s2.NewReader(bytes.NewReader(raw)))
}

func decode(it item) error {
	decoder, ok := decoders[it.Kind]
	if !ok {
		return fmt.Errorf("unknown kind %q", it.Kind)
	}
	payload := []byte(it.Payload)
	if it.Snappy {
		var err error
		if payload, err = inflate(it.Payload); err != nil {
			return fmt.Errorf("snappy: %v", err)
		}
	}
	payload, err := strip(it.Kind, payload)
	if err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(payload))
	d.DisallowUnknownFields()
	var c checks
	if err := decoder(d, &c); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	if len(c.missing) > 0 {
		return fmt.Errorf("missing or zero: %s", strings.Join(c.missing, ", "))
	}
	return nil
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 0, 1<<20), 64<<20)
	failed := false
	for in.Scan() {
		var it item
		if err := json.Unmarshal(in.Bytes(), &it); err != nil {
			fmt.Printf("fail\t?\tinput line: %v\n", err)
			failed = true
			continue
		}
		if err := decode(it); err != nil {
			fmt.Printf("fail\t%s\t%v\n", it.Label, err)
			failed = true
		} else {
			fmt.Printf("ok\t%s\n", it.Label)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "sysdecode:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}
