// Auth callout service for the integration tests, built on the official NATS
// JavaScript packages (@nats-io/transport-node, @nats-io/jwt, @nats-io/nkeys)
// so that warden is checked against code we did not write.
//
//   node tests/callout/service.mjs keys         -> one JSON line of fresh keys
//   node tests/callout/service.mjs serve CONFIG.json
//
// Packages: scripts/node-deps.sh installs them into target/node. They
// are loaded with require() of absolute paths under $CALLOUT_NODE_MODULES
// (default <repo>/target/node/node_modules), because an ES module
// ignores NODE_PATH and would otherwise look for node_modules next to this
// file, in the source tree. The packages are CommonJS, so require() fits.
//
// CONFIG.json: {"url","user","pass","issuer_seed","xkey_seed"?,"log_requests"?,"tls"?,
//   "users":{"<name>":{"password","account","pub":{"allow","deny"},
//   "sub":{"allow","deny"},"expires_in"?,"mode"?}}}
// log_requests: a file to which each decoded request is appended as a JSON
// line ({subject, reply, sealed, headers, header, claims}); the tests read
// it to see what the server sent.
//
// Modes (default "ok"): ok, error:<text>, wrong_aud, wrong_sub, wrong_issuer,
// expired, silent, slow:<ms>, replay (answers with the last answer that
// admitted someone: validly signed, but for another connection), other_server (aud = another server's key,
// well-formed but not this server's ID), and three that probe the user JWT rather than
// the response: no_aud (user JWT without aud), wrong_jwt_sub (user JWT for
// another key), wrong_jwt_issuer (user JWT signed by another account).
//
// stdout: "ready" once the subscription is known to the server.
// stderr: "handled <user> <mode>[ sealed]" per request answered or dropped.

import { createRequire } from "node:module";
import { appendFileSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const modules = process.env.CALLOUT_NODE_MODULES ||
  join(repo, "target", "node", "node_modules");
const require = createRequire(import.meta.url);
const load = (name) => {
  try {
    return require(join(modules, name));
  } catch (e) {
    console.error(`callout: cannot load ${name} from ${modules} ` +
      `(run scripts/node-deps.sh): ${e.message}`);
    process.exit(2);
  }
};
const nkeys = load("@nats-io/nkeys");
const jwt = load("@nats-io/jwt");
const { connect } = load("@nats-io/transport-node");

const te = new TextEncoder();
const td = new TextDecoder();
const seedOf = (kp) => td.decode(kp.getSeed());
const now = () => Math.floor(Date.now() / 1000);

if (process.argv[2] === "keys") {
  const a = nkeys.createAccount();
  const x = nkeys.createCurve();
  console.log(JSON.stringify({
    issuer_seed: seedOf(a),
    issuer: a.getPublicKey(),
    xkey_seed: seedOf(x),
    xkey: x.getPublicKey(),
  }));
  process.exit(0);
}
if (process.argv[2] !== "serve" || !process.argv[3]) {
  console.error("usage: service.mjs keys | serve CONFIG.json");
  process.exit(2);
}

const cfg = JSON.parse(readFileSync(process.argv[3], "utf8"));
const issuer = nkeys.fromSeed(te.encode(cfg.issuer_seed));
const xkey = cfg.xkey_seed ? nkeys.fromCurveSeed(te.encode(cfg.xkey_seed)) : null;

// Signs claims as they are, with the library's generic encoder (which sets
// iss, iat, jti and nats.version). encodeAuthorizationResponse would insist
// that aud is an N... server key, which rules out wrong_aud and any server
// whose ID is not an nkey.
const sign = (claims, kp) => jwt.encode(jwt.Algorithms.v2, claims, kp);

async function userJwt(u, name, userKey, signer, withAud = true) {
  const perms = {};
  if (u.pub) perms.pub = u.pub;
  if (u.sub) perms.sub = u.sub;
  const exp = u.expires_in ? now() + u.expires_in : undefined;
  if (!withAud) {
    // encodeUser would fill in aud "NATS"; leave the claim out altogether.
    const nats = { ...perms, subs: -1, data: -1, payload: -1, type: "user" };
    return await sign({ name, sub: userKey, exp, nats }, signer);
  }
  return await jwt.encodeUser(name, userKey, signer, perms, { aud: u.account, exp });
}

// The last answer that admitted someone, for the "replay" mode.
let lastAdmitted = null;

async function answer(req, u, name, mode) {
  if (mode === "replay") {
    // An earlier, validly signed answer for another connection's key.
    return lastAdmitted ?? await sign({ sub: req.nats.user_nkey, aud: req.nats.server_id.id,
      nats: { error: "nothing to replay yet", type: "authorization_response" } }, issuer);
  }
  let sub = req.nats.user_nkey;
  let aud = req.nats.server_id.id;
  let signer = issuer;
  let exp;
  let data;
  if (!u || mode === "bad_password") {
    data = { error: "unknown user or bad password" };
  } else if (mode.startsWith("error:")) {
    data = { error: mode.slice("error:".length) };
  } else {
    let jwtSub = sub, jwtSigner = issuer, withAud = true;
    if (mode === "wrong_aud") aud = "NOTTHESERVER";
    if (mode === "other_server") aud = nkeys.createServer().getPublicKey();
    if (mode === "wrong_sub") sub = jwtSub = nkeys.createUser().getPublicKey();
    if (mode === "wrong_issuer") signer = nkeys.createAccount();
    if (mode === "expired") exp = now() - 10;
    if (mode === "no_aud") withAud = false;
    if (mode === "wrong_jwt_sub") jwtSub = nkeys.createUser().getPublicKey();
    if (mode === "wrong_jwt_issuer") jwtSigner = nkeys.createAccount();
    data = { jwt: await userJwt(u, name, jwtSub, jwtSigner, withAud) };
  }
  data.type = "authorization_response";
  const claims = { sub, aud, nats: data };
  if (exp !== undefined) claims.exp = exp;
  const token = await sign(claims, signer);
  if (mode === "ok") lastAdmitted = token;
  return token;
}

async function handle(msg) {
  let label = "?";
  let mode = "?";
  try {
    let body = msg.data;
    const serverXkey = msg.headers?.get("Nats-Server-Xkey") || "";
    // A sealed request is binary ("xkv1"...); a plain one is a JWT ("eyJ").
    const sealed = xkey !== null && td.decode(body.subarray(0, 3)) !== "eyJ";
    if (sealed) {
      body = xkey.open(body, serverXkey);
      if (body === null) throw new Error("cannot open sealed request");
    }
    const token = td.decode(body);
    const req = jwt.decode(token); // also verifies the signature
    if (cfg.log_requests) {
      const hdrs = {};
      for (const k of msg.headers?.keys() ?? []) hdrs[k] = msg.headers.get(k);
      const header = JSON.parse(Buffer.from(token.split(".")[0], "base64url"));
      appendFileSync(cfg.log_requests, JSON.stringify({
        subject: msg.subject, reply: msg.reply, sealed, headers: hdrs, header, claims: req,
      }) + "\n");
    }
    const co = req.nats.connect_opts || {};
    label = co.user || "-";
    const u = Object.hasOwn(cfg.users, label) ? cfg.users[label] : undefined;
    mode = !u ? "unknown_user"
      : u.password !== co.pass ? "bad_password"
      : u.mode || "ok";
    if (mode === "silent") {
      console.error(`handled ${label} ${mode}`);
      return;
    }
    if (mode.startsWith("slow:")) {
      await new Promise((r) => setTimeout(r, Number(mode.slice(5))));
    }
    let out = te.encode(await answer(req, u, label, mode));
    // Seal the answer when the server told us its key and we have ours.
    if (xkey !== null && serverXkey) out = xkey.seal(out, serverXkey);
    msg.respond(out);
    console.error(`handled ${label} ${mode}${sealed ? " sealed" : ""}`);
  } catch (e) {
    console.error(`callout: request for ${label} (${mode}) failed: ${e.stack || e}`);
  }
}

let nc;
try {
  const opts = { servers: cfg.url, user: cfg.user, pass: cfg.pass };
  // Mutual TLS: {"tls": {"ca", "cert", "key"}} (PEM files).
  if (cfg.tls) opts.tls = { caFile: cfg.tls.ca, certFile: cfg.tls.cert, keyFile: cfg.tls.key };
  nc = await connect(opts);
} catch (e) {
  console.error(`callout: connect to ${cfg.url} failed: ${e.message}`);
  process.exit(1);
}
let stopping = false;
process.on("SIGTERM", async () => {
  stopping = true;
  await nc.close().catch(() => {});
  process.exit(0);
});
// Each message is handled on its own promise, so a slow answer blocks no one.
nc.subscribe("$SYS.REQ.USER.AUTH", { callback: (err, msg) => {
  if (err) console.error(`callout: subscription error: ${err.message}`);
  else handle(msg);
} });
await nc.flush(); // the SUB has reached the server once the PONG is back
process.stdout.write("ready\n");
const err = await nc.closed();
if (!stopping) {
  console.error(`callout: connection closed${err ? ": " + err.message : ""}`);
  process.exit(1);
}
