// The real CometD JavaScript client (npm `cometd` + `cometd-nodejs-client`) driven over JSON
// lines, so Rust tests can check Herald's /cometd endpoint against the client people actually use.
//
// stdin: one command per line; stdout: one JSON object per line. Every command gets exactly one
// reply line with the same `op`; `message` and `meta` lines arrive in between, unprompted.
//   {"op":"configure","url":"http://127.0.0.1:PORT/cometd","transport":"long-polling"|"websocket","logLevel"?}
//   {"op":"handshake","ext"?}          -> {"op":"handshake","successful","clientId","error","transport","reply"}
//   {"op":"listen","channel"}          -> {"op":"listen","channel"}
//   {"op":"subscribe","channel","ext"?}   -> {"op":"subscribe","channel","successful","error","reply"}
//   {"op":"unsubscribe","channel","ext"?} -> {"op":"unsubscribe","channel","successful","error","reply"}
//   {"op":"publish","channel","data","ext"?} -> {"op":"publish","channel","successful","error","reply"}
//   {"op":"disconnect","ext"?}         -> {"op":"disconnect","successful","error","reply"}
//   {"op":"close"}                     -> exits (so does closing stdin)
// Unprompted: {"op":"message","channel","data","via":"listener"|"subscription","message"}
//             {"op":"meta","channel","successful","error","advice","reply"} for every /meta/* reply.
// A command that throws (e.g. handshake while not disconnected) answers
// {"op":<op>,"successful":false,"error":"exception: ..."}.
//
// The npm packages come from HERALD_TEST_NODE_MODULES (scripts/test installs them into
// target/test-node), not from a node_modules next to this file: the repo keeps one Node prefix.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";

// stdout carries the protocol, so everything the library logs goes to stderr. adapt() also
// points window.console at console, so this covers the client's own logging.
for (const level of ["log", "info", "debug", "warn", "error", "trace"]) {
    console[level] = (...args) => process.stderr.write(`[cometd ${level}] ${args.map(String).join(" ")}\n`);
}

const nodeModules = process.env.HERALD_TEST_NODE_MODULES
    || fileURLToPath(new URL("../../../target/test-node/node_modules", import.meta.url));

// Both packages are ESM with a plain "main" (no "exports" map), so the entry point is that file.
async function load(name) {
    const dir = join(nodeModules, name);
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    return import(pathToFileURL(join(dir, manifest.main || "index.js")).href);
}

function emit(line) {
    process.stdout.write(JSON.stringify(line, plain()) + "\n");
}

// Failure replies built by the client carry a conduit (the XHR, or the WebSocket transport) and
// an Error, with cycles; keep them readable: conduits by type or class, errors by message.
function plain() {
    const seen = new WeakSet();
    return (key, value) => {
        if (value instanceof Error) return `${value.name}: ${value.message}`;
        if (typeof value === "function") return undefined;
        if (typeof value !== "object" || value === null) return value;
        if (key === "transport" || key === "xhr" || key === "webSocket") {
            return typeof value.type === "string" ? value.type : value.constructor?.name ?? "object";
        }
        if (seen.has(value)) return "[cycle]";
        seen.add(value);
        return value;
    };
}

// Transport failures have no Bayeux `error`; report the reason the client recorded instead.
function errorOf(reply) {
    if (!reply) return null;
    if (reply.error !== undefined) return reply.error;
    const failure = reply.failure;
    if (!failure) return null;
    if (failure.reason) return String(failure.reason);
    if (failure.exception) return String(failure.exception);
    if (failure.httpCode !== undefined) return `http ${failure.httpCode}`;
    return "transport failure";
}

const props = (command) => (command.ext === undefined ? undefined : { ext: command.ext });

let loaded;
try {
    const [adapter, library] = await Promise.all([load("cometd-nodejs-client"), load("cometd")]);
    // adapt() installs window.XMLHttpRequest/WebSocket; it must run before `new CometD()`,
    // whose constructor registers the websocket transport only if window.WebSocket exists.
    adapter.adapt();
    loaded = library;
} catch (error) {
    emit({ op: "fatal", error: `cannot load the CometD client from ${nodeModules}: ${error}` });
    process.exit(2);
}

const cometd = new loaded.CometD();
const subscriptions = new Map();
const listened = new Set();

for (const channel of ["/meta/handshake", "/meta/connect", "/meta/disconnect", "/meta/subscribe", "/meta/unsubscribe"]) {
    cometd.addListener(channel, (reply) => emit({
        op: "meta",
        channel,
        successful: reply.successful === true,
        error: errorOf(reply),
        advice: reply.advice ?? null,
        reply,
    }));
}

function onMessage(via) {
    return (message) => emit({ op: "message", channel: message.channel, data: message.data, via, message });
}

// The callback the client keeps for a handshake is reused for its automatic re-handshakes, so
// only its first call answers the command; the later ones show up as `meta` lines.
function once(fn) {
    let done = false;
    return (...args) => {
        if (!done) {
            done = true;
            fn(...args);
        }
    };
}

const commands = {
    configure(command) {
        if (command.transport === "long-polling") {
            cometd.unregisterTransport("websocket");
        } else if (command.transport !== "websocket") {
            throw new Error(`unknown transport ${command.transport}`);
        }
        cometd.configure({ url: command.url, logLevel: command.logLevel || "warn" });
        emit({ op: "configure", transports: cometd.getTransportTypes() });
    },
    handshake(command) {
        cometd.handshake(props(command), once((reply) => emit({
            op: "handshake",
            successful: reply.successful === true,
            clientId: reply.clientId ?? null,
            error: errorOf(reply),
            transport: cometd.getTransport()?.type ?? null,
            reply,
        })));
    },
    listen(command) {
        if (!listened.has(command.channel)) {
            listened.add(command.channel);
            cometd.addListener(command.channel, onMessage("listener"));
        }
        emit({ op: "listen", channel: command.channel });
    },
    subscribe(command) {
        const handle = cometd.subscribe(command.channel, onMessage("subscription"), props(command), (reply) => emit({
            op: "subscribe",
            channel: command.channel,
            successful: reply.successful === true,
            error: errorOf(reply),
            reply,
        }));
        subscriptions.set(command.channel, handle);
    },
    unsubscribe(command) {
        const handle = subscriptions.get(command.channel);
        if (!handle) throw new Error(`not subscribed to ${command.channel}`);
        subscriptions.delete(command.channel);
        cometd.unsubscribe(handle, props(command), (reply) => emit({
            op: "unsubscribe",
            channel: command.channel,
            successful: reply.successful === true,
            error: errorOf(reply),
            reply,
        }));
    },
    publish(command) {
        cometd.publish(command.channel, command.data ?? {}, props(command), (reply) => emit({
            op: "publish",
            channel: command.channel,
            successful: reply.successful === true,
            error: errorOf(reply),
            reply,
        }));
    },
    disconnect(command) {
        // The client silently ignores disconnect() when it is already disconnected, and would
        // then never call back; answer for it.
        if (cometd.isDisconnected()) {
            emit({ op: "disconnect", successful: false, error: "client already disconnected", reply: null });
            return;
        }
        cometd.disconnect(props(command), (reply) => emit({
            op: "disconnect",
            successful: reply.successful === true,
            error: errorOf(reply),
            reply,
        }));
    },
    close() {
        process.exit(0);
    },
};

const input = createInterface({ input: process.stdin });
input.on("line", (line) => {
    if (!line.trim()) return;
    let command;
    try {
        command = JSON.parse(line);
        const run = commands[command.op];
        if (!run) throw new Error(`unknown op ${command.op}`);
        run(command);
    } catch (error) {
        emit({ op: command?.op ?? "invalid", successful: false, error: `exception: ${error.message}` });
    }
});
// The test dropped its end: nothing more will come, so stop (the client's timers would keep
// the process alive otherwise).
input.on("close", () => process.exit(0));
emit({ op: "ready" });
