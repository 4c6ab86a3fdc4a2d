// jwtgen writes the operator-mode fixtures of tests/operator.rs with the
// official nats-io/jwt v2 and nkeys libraries (Debian's Go packages, built in
// GOPATH mode by scripts/jwtgen.sh), so warden's JWT code is checked against
// tokens it did not write.
//
//	jwtgen DIR
//
// writes DIR/fixtures.json (keys, tokens, creds paths), DIR/*.creds and
// DIR/jwt/<account>.jwt (a directory resolver's store).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

type fixtures struct {
	Operator       string            `json:"operator"`
	OperatorKey    string            `json:"operator_key"`
	SystemAccount  string            `json:"system_account"`
	Accounts       map[string]string `json:"accounts"`     // name -> public key
	AccountJWTs    map[string]string `json:"account_jwts"` // public key -> JWT
	Creds          map[string]string `json:"creds"`        // user -> creds file
	UserKeys       map[string]string `json:"user_keys"`    // user -> public key
	UpdatedA       string            `json:"updated_a"`    // A, revoking "revoked", tighter defaults
	ForgedA        string            `json:"forged_a"`     // A signed by an untrusted operator
	// RevokeSeries[i]: A (original defaults) revoking users flood0..flood<i>,
	// one push per revocation.
	RevokeSeries []string `json:"revoke_series"`
	// M with subject mappings; UpdatedM changes them; BadM's weights add
	// up to 120 (the library's validation refuses it); BadFnM names an
	// unknown transform function (validation passes, no server can apply it).
	UpdatedM string `json:"updated_m"`
	BadM     string `json:"bad_m"`
	BadFnM   string `json:"bad_fn_m"`
	ShortLivedSecs int64             `json:"short_lived_secs"`
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "jwtgen:", err)
		os.Exit(1)
	}
}

func pair(create func() (nkeys.KeyPair, error)) (nkeys.KeyPair, string) {
	kp, err := create()
	must(err)
	pub, err := kp.PublicKey()
	must(err)
	return kp, pub
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: jwtgen DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	must(os.MkdirAll(filepath.Join(dir, "jwt"), 0o755))
	f := fixtures{Accounts: map[string]string{}, AccountJWTs: map[string]string{}, Creds: map[string]string{},
		UserKeys: map[string]string{}, ShortLivedSecs: 3}

	okp, opub := pair(nkeys.CreateOperator)
	osk, ospub := pair(nkeys.CreateOperator)
	syskp, syspub := pair(nkeys.CreateAccount)
	akp, apub := pair(nkeys.CreateAccount)
	ask, askpub := pair(nkeys.CreateAccount)
	ascoped, ascopedpub := pair(nkeys.CreateAccount)
	bkp, bpub := pair(nkeys.CreateAccount)
	mkp, mpub := pair(nkeys.CreateAccount)
	f.Accounts["M"] = mpub
	f.OperatorKey, f.SystemAccount = opub, syspub
	f.Accounts["SYS"], f.Accounts["A"], f.Accounts["B"] = syspub, apub, bpub

	oc := jwt.NewOperatorClaims(opub)
	oc.Name = "TEST_OP"
	oc.SigningKeys.Add(ospub)
	oc.SystemAccount = syspub
	op, err := oc.Encode(okp)
	must(err)
	f.Operator = op
	must(os.WriteFile(filepath.Join(dir, "operator.jwt"), []byte(op), 0o644))

	// SYS, signed by the operator's signing key.
	sc := jwt.NewAccountClaims(syspub)
	sc.Name = "SYS"
	sys, err := sc.Encode(osk)
	must(err)
	f.AccountJWTs[syspub] = sys

	// B exports a private service (activation needed) and a public stream.
	bc := jwt.NewAccountClaims(bpub)
	bc.Name = "B"
	bc.Exports.Add(&jwt.Export{Name: "svc", Subject: "svc.>", Type: jwt.Service, TokenReq: true})
	bc.Exports.Add(&jwt.Export{Name: "feed", Subject: "feed.>", Type: jwt.Stream})
	b, err := bc.Encode(okp)
	must(err)
	f.AccountJWTs[bpub] = b

	// The activation B grants A for svc.>.
	act := jwt.NewActivationClaims(apub)
	act.ImportSubject = "svc.>"
	act.ImportType = jwt.Service
	token, err := act.Encode(bkp)
	must(err)

	account := func(revoke []string, defaults []string) string {
		ac := jwt.NewAccountClaims(apub)
		ac.Name = "A"
		ac.SigningKeys.Add(askpub)
		scope := jwt.NewUserScope()
		scope.Key = ascopedpub
		scope.Role = "scoped"
		scope.Template.Pub.Allow.Add("scoped.{{name()}}.>", "_INBOX.>")
		scope.Template.Sub.Allow.Add("scoped.{{name()}}.>", "_INBOX.>")
		ac.SigningKeys.AddScopedSigner(scope)
		ac.DefaultPermissions.Pub.Allow.Add(defaults...)
		ac.DefaultPermissions.Sub.Allow.Add(defaults...)
		ac.Imports.Add(&jwt.Import{Name: "svc", Subject: "svc.>", Account: bpub, Token: token, Type: jwt.Service, Share: true})
		ac.Imports.Add(&jwt.Import{Name: "feed", Subject: "feed.>", Account: bpub, LocalSubject: "b.feed.>", Type: jwt.Stream})
		for _, key := range revoke {
			ac.Revoke(key)
		}
		t, err := ac.Encode(osk)
		must(err)
		return t
	}
	defaultsA := []string{"a.>", "_INBOX.>", "svc.>", "b.feed.>"}
	f.AccountJWTs[apub] = account(nil, defaultsA)

	// An A the operator never signed.
	rogue, _ := pair(nkeys.CreateOperator)
	forged := jwt.NewAccountClaims(apub)
	forged.Name = "A"
	forgedTok, err := forged.Encode(rogue)
	must(err)
	f.ForgedA = forgedTok

	user := func(name string, acct string, signer nkeys.KeyPair, issuerAccount string, edit func(*jwt.UserClaims)) {
		ukp, upub := pair(nkeys.CreateUser)
		uc := jwt.NewUserClaims(upub)
		uc.Name = name
		uc.IssuerAccount = issuerAccount
		if edit != nil {
			edit(uc)
		}
		t, err := uc.Encode(signer)
		must(err)
		seed, err := ukp.Seed()
		must(err)
		creds, err := jwt.FormatUserConfig(t, seed)
		must(err)
		path := filepath.Join(dir, name+".creds")
		must(os.WriteFile(path, creds, 0o600))
		f.Creds[name] = path
		f.UserKeys[name] = upub
		_ = acct
	}
	user("sys", "SYS", syskp, "", nil)
	user("alice", "A", akp, "", func(uc *jwt.UserClaims) {
		uc.Pub.Allow.Add("a.>", "_INBOX.>", "svc.>")
		uc.Sub.Allow.Add("a.>", "_INBOX.>", "b.feed.>")
	})
	user("bob", "A", ask, apub, nil) // signing key, account defaults
	user("carol", "A", ascoped, apub, func(uc *jwt.UserClaims) { uc.SetScoped(true) })
	user("bearer", "A", akp, "", func(uc *jwt.UserClaims) { uc.BearerToken = true })
	user("expired", "A", akp, "", func(uc *jwt.UserClaims) { uc.Expires = time.Now().Add(-time.Hour).Unix() })
	user("shortlived", "A", akp, "", func(uc *jwt.UserClaims) {
		uc.Expires = time.Now().Add(time.Duration(f.ShortLivedSecs) * time.Second).Unix()
	})
	user("revoked", "A", akp, "", nil)
	user("elsewhere", "A", akp, "", func(uc *jwt.UserClaims) { uc.Src.Add("10.0.0.0/8") })
	user("websocket-only", "A", akp, "", func(uc *jwt.UserClaims) {
		uc.AllowedConnectionTypes.Add(jwt.ConnectionTypeWebsocket)
	})
	user("service", "B", bkp, "", nil)
	// warden's rate limit tags (other servers ignore them).
	user("limited", "A", akp, "", func(uc *jwt.UserClaims) {
		uc.Tags.Add("warden-msgs-per-sec:500", "warden-burst-msgs:20")
	})
	user("cutoff", "A", akp, "", func(uc *jwt.UserClaims) {
		uc.Tags.Add("warden-msgs-per-sec:100", "warden-burst-msgs:10", "warden-rate-exceeded:close", "warden-close-after:2s")
	})
	user("mistagged", "A", akp, "", func(uc *jwt.UserClaims) { uc.Tags.Add("warden-msgs-per-sec:lots") })
	const series = 20
	for i := 0; i < series; i++ {
		user(fmt.Sprintf("flood%d", i), "A", akp, "", nil)
	}
	// Signed by a key the account does not list.
	stranger, _ := pair(nkeys.CreateAccount)
	user("stranger", "A", stranger, apub, nil)

	// M maps m.in.* through a transform function, splits m.split by
	// weight, and scopes m.scoped to cluster "east" (elsewhere: m.anywhere).
	mapped := func(edit func(*jwt.AccountClaims)) string {
		mc := jwt.NewAccountClaims(mpub)
		mc.Name = "M"
		edit(mc)
		t, err := mc.Encode(okp)
		must(err)
		return t
	}
	f.AccountJWTs[mpub] = mapped(func(mc *jwt.AccountClaims) {
		mc.AddMapping("m.in.*", jwt.WeightedMapping{Subject: "m.out.{{wildcard(1)}}"})
		mc.AddMapping("m.split", jwt.WeightedMapping{Subject: "m.left", Weight: 50},
			jwt.WeightedMapping{Subject: "m.right", Weight: 50})
		mc.AddMapping("m.scoped", jwt.WeightedMapping{Subject: "m.east", Weight: 100, Cluster: "east"},
			jwt.WeightedMapping{Subject: "m.anywhere"})
	})
	f.BadM = mapped(func(mc *jwt.AccountClaims) {
		mc.AddMapping("m.in.*", jwt.WeightedMapping{Subject: "m.x", Weight: 60},
			jwt.WeightedMapping{Subject: "m.y", Weight: 60})
	})
	f.BadFnM = mapped(func(mc *jwt.AccountClaims) {
		mc.AddMapping("m.in.*", jwt.WeightedMapping{Subject: "m.out.{{nosuchfunction(1)}}"})
	})
	user("mapper", "M", mkp, "", nil)

	// The update: "revoked" revoked, and the defaults no longer allow a.>.
	time.Sleep(1100 * time.Millisecond) // a later iat than the first A
	f.UpdatedA = account([]string{f.UserKeys["revoked"]}, []string{"_INBOX.>", "svc.>"})
	f.UpdatedM = mapped(func(mc *jwt.AccountClaims) {
		mc.AddMapping("m.in.*", jwt.WeightedMapping{Subject: "m.moved.$1"})
	})
	// Same iat as UpdatedA is fine: the resolver refuses only older ones.
	var revoked []string
	for i := 0; i < series; i++ {
		revoked = append(revoked, f.UserKeys[fmt.Sprintf("flood%d", i)])
		f.RevokeSeries = append(f.RevokeSeries, account(revoked, defaultsA))
	}

	for pub, tok := range f.AccountJWTs {
		must(os.WriteFile(filepath.Join(dir, "jwt", pub+".jwt"), []byte(tok), 0o644))
	}
	out, err := json.MarshalIndent(f, "", "  ")
	must(err)
	must(os.WriteFile(filepath.Join(dir, "fixtures.json"), out, 0o644))
}
