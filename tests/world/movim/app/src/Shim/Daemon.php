<?php
// Why this file exists: the running part of Movim's daemon as movim-setup sees it from outside. One
// stream_select loop serves the websocket port, the API socket, and the session workers' stderr.
//
// Websocket port (DAEMON_INTERFACE:DAEMON_PORT): `IoServer(HttpServer(WsServer(Core)))`, no router, so
// any path (DaemonCommand.php @ v0.29.2 … v0.34.1).
//  - The handshake is Ratchet's, in its order (src/Ratchet/Http/HttpServer.php,
//    src/Ratchet/Http/HttpRequestParser.php, src/Ratchet/WebSocket/WsServer.php `onOpen` in
//    plesk/ratchetphp @ v1.0.6; src/Handshake/ServerNegotiator.php `handshake`,
//    src/Handshake/RequestVerifier.php in ratchetphp/RFC6455 @ v0.4.0): 413 for a head over 4096
//    bytes, 405, 505, 400 (path, Host), 426 "Upgrade header MUST be provided", 400 "Connection Upgrade
//    MUST be requested", 400 "Invalid Sec-WebSocket-Key", 426 (version), 426 "No
//    Sec-WebSocket-Protocols requested supported" for any subprotocol, else 101 — whatever the Origin.
//    Every answer carries `X-Powered-By: Ratchet/1.0.3` (`\Ratchet\VERSION`); a non-101 closes.
//  - After the 101, `Core::onOpen` (src/Movim/Daemon/Core.php @ v0.30, v0.34.1): an untrusted
//    connection (`isTrustedConnection`) gets `$conn->close()` — Ratchet's WsConnection::close sends a
//    close frame with code 1000 and closes TCP — and onOpen goes on (no return). A trusted one with
//    no `MOVIM_SESSION_ID` cookie stays open and silent. With the cookie, the session gets a worker
//    (Worker.php): one per session until v0.32.1 (src/Movim/Daemon/Session.php `register`), sessions
//    packed 8 per worker from v0.33 (src/Movim/Daemon/SessionsWorker.php `register`).
//  - An exception inside onOpen (e.g. Monolog failing to log a warning) is caught by Ratchet's
//    IoServer and printed by `Core::onError`: `An error has occurred: <message>`.
// API socket cache/socketapi.sock (src/Movim/Daemon/Api.php): HTTP over a unix socket, the action
// is the request's Host: linked, started, session, sessionstree.
// Faults: daemon-exits leaves the loop with code 0 after about a second; never-healthy answers 503 on
// the websocket port while the API keeps working.
// Differs: no permessage-deflate, fragmented frames, Ratchet's 500, the ?path=visio lock, `up`/`down`
// states, the avatar/resolver/pusher/templater workers, the compile children, or the /ws/ snippets.

namespace Shim;

final class Daemon
{
    private const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
    private const POWERED_BY = 'X-Powered-By: Ratchet/1.0.3';
    private const MAX_HEAD = 4096;
    private const MAX_SESSIONS = 8;
    private const REASONS = [
        400 => 'Bad Request', 405 => 'Method Not Allowed', 413 => 'Payload Too Large',
        426 => 'Upgrade Required', 503 => 'Service Unavailable', 505 => 'HTTP Version Not Supported',
    ];

    /** @var resource */
    private $wsServer;
    /** @var resource */
    private $apiServer;
    /** id => ['stream', 'kind' => 'ws'|'api', 'buf', 'open' => bool, 'headers' => name => [values]] */
    private array $clients = [];
    /** sid => ['worker' => wid, 'clients' => [id => true], 'registered', 'started', 'language'] */
    private array $sessions = [];
    /** wid => ['proc', 'stderr', 'internal' => ?id, 'sessions' => [sid => true], 'alive' => bool] */
    private array $workers = [];
    /** The random per-start key the workers present (Core::__construct: generateKey(32)). */
    private string $key;
    private float $nextClean;

    private function __construct(private ?string $baseuri, private string $fault)
    {
        $alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
        $this->key = '';
        for ($i = 0; $i < 32; $i++) {
            $this->key .= $alphabet[random_int(0, strlen($alphabet) - 1)];
        }
        $this->nextClean = microtime(true) + 5;
    }

    /** Binds both sockets; throws with the reason (and errno as code) when one cannot be bound. */
    public static function listen(string $interface, int $port, string $apiSocket, ?string $baseuri): self
    {
        $daemon = new self($baseuri, Config::fault());
        // react/socket's TcpServer wants an IP address (src/TcpServer.php in reactphp/socket).
        if (filter_var(trim($interface, '[]'), FILTER_VALIDATE_IP) === false) {
            throw new \InvalidArgumentException("Given URI \"tcp://$interface:$port\" does not contain a valid host IP (EINVAL)", 22);
        }
        $ws = @stream_socket_server("tcp://$interface:$port", $errno, $error);
        if ($ws === false) {
            throw new \RuntimeException("Failed to listen on \"tcp://$interface:$port\": $error", $errno);
        }
        if (file_exists($apiSocket)) {
            unlink($apiSocket);
        }
        $api = @stream_socket_server("unix://$apiSocket", $errno, $error);
        if ($api === false) {
            throw new \RuntimeException("Failed to listen on \"unix://$apiSocket\": $error", $errno);
        }
        $daemon->wsServer = $ws;
        $daemon->apiServer = $api;
        return $daemon;
    }

    public function run(): int
    {
        $startedAt = microtime(true);
        while (true) {
            if ($this->fault === 'daemon-exits' && microtime(true) - $startedAt > 1.0) {
                echo "Movim daemon stopped\n";
                return 0;
            }
            $read = [$this->wsServer, $this->apiServer];
            foreach ($this->clients as $client) {
                $read[] = $client['stream'];
            }
            foreach ($this->workers as $worker) {
                if ($worker['alive']) {
                    $read[] = $worker['stderr'];
                }
            }
            $write = $except = null;
            $ready = Log::quietly(function () use (&$read, &$write, &$except) {
                return stream_select($read, $write, $except, 0, 200000);
            });
            if ($ready === false) {
                continue; // interrupted by a signal
            }
            foreach ($read as $stream) {
                if ($stream === $this->wsServer) {
                    $this->accept($stream, 'ws');
                } elseif ($stream === $this->apiServer) {
                    $this->accept($stream, 'api');
                } elseif (isset($this->clients[(int) $stream])) {
                    $this->receive((int) $stream);
                } else {
                    $this->workerOutput($stream);
                }
            }
            if (microtime(true) >= $this->nextClean) {
                $this->nextClean = microtime(true) + 5;
                $this->clean();
            }
        }
    }

    // ---- connections ---------------------------------------------------------------------------

    private function accept($server, string $kind): void
    {
        $stream = Log::quietly(fn () => stream_socket_accept($server, 0));
        if ($stream !== false) {
            stream_set_timeout($stream, 5);
            $this->clients[(int) $stream] = ['stream' => $stream, 'kind' => $kind, 'buf' => '', 'open' => false, 'headers' => []];
        }
    }

    private function receive(int $id): void
    {
        $client = &$this->clients[$id];
        $data = Log::quietly(fn () => fread($client['stream'], 65536));
        if ($data === false || ($data === '' && feof($client['stream']))) {
            $this->drop($id);
            return;
        }
        $client['buf'] .= $data;
        if ($client['open']) {
            $this->readFrames($id);
            return;
        }
        if ($client['kind'] === 'ws' && strlen($client['buf']) > self::MAX_HEAD) {
            $this->respond($id, 413); // HttpRequestParser's OverflowException
            return;
        }
        $end = strpos($client['buf'], "\r\n\r\n");
        if ($end === false) {
            if (strlen($client['buf']) > 65536) {
                $this->respond($id, 413);
            }
            return;
        }
        [$requestLine, $headers] = self::parseHead(substr($client['buf'], 0, $end));
        $body = substr($client['buf'], $end + 4);
        if ($client['kind'] === 'api') {
            if (strlen($body) < (int) ($headers['content-length'][0] ?? 0)) {
                return; // wait for the rest of the body
            }
            $this->answerApi($id, $headers['host'][0] ?? '');
        } else {
            $client['buf'] = $body;
            $client['headers'] = $headers;
            $this->handshake($id, $requestLine, $headers);
        }
    }

    /** The request line and the headers, name (lower case) => values, one per header line. */
    private static function parseHead(string $head): array
    {
        $lines = explode("\r\n", $head);
        $requestLine = array_shift($lines);
        $headers = [];
        foreach ($lines as $line) {
            $colon = strpos($line, ':');
            if ($colon !== false) {
                $headers[strtolower(trim(substr($line, 0, $colon)))][] = trim(substr($line, $colon + 1));
            }
        }
        return [$requestLine, $headers];
    }

    // ---- the handshake (Ratchet) ---------------------------------------------------------------

    private function handshake(int $id, string $requestLine, array $h): void
    {
        if ($this->fault === 'never-healthy') {
            $this->respond($id, 503);
            return;
        }
        $parts = explode(' ', $requestLine);
        $method = $parts[0] ?? '';
        $path = (string) parse_url($parts[1] ?? '', PHP_URL_PATH);
        $httpVersion = (float) substr($parts[2] ?? 'HTTP/1.0', 5);
        $upgradeHeaders = ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13'];

        if (strtolower($method) !== 'get') {
            $this->respond($id, 405, null, ['Allow: GET']);
        } elseif ($httpVersion < 1.1) {
            $this->respond($id, 505);
        } elseif ($path === '' || $path[0] !== '/' || str_contains($path, '#') || preg_match('/[^\x00-\x7F]/', $path)) {
            $this->respond($id, 400);
        } elseif (count($h['host'] ?? []) !== 1) {
            $this->respond($id, 400);
        } elseif (count($h['upgrade'] ?? []) !== 1 || strtolower($h['upgrade'][0]) !== 'websocket') {
            $this->respond($id, 426, 'Upgrade header MUST be provided', $upgradeHeaders);
        } elseif (!self::hasUpgradeToken($h['connection'] ?? [])) {
            $this->respond($id, 400, 'Connection Upgrade MUST be requested');
        } elseif (count($h['sec-websocket-key'] ?? []) !== 1 || strlen((string) base64_decode($h['sec-websocket-key'][0])) !== 16) {
            $this->respond($id, 400, 'Invalid Sec-WebSocket-Key');
        } elseif (count($h['sec-websocket-version'] ?? []) !== 1 || (int) $h['sec-websocket-version'][0] !== 13) {
            $this->respond($id, 426, null, $upgradeHeaders);
        } elseif (isset($h['sec-websocket-protocol'])) {
            $this->respond($id, 426, 'No Sec-WebSocket-Protocols requested supported', $upgradeHeaders);
        } else {
            $accept = base64_encode(sha1($h['sec-websocket-key'][0] . self::WS_GUID, true));
            $this->send($id, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                . "Sec-WebSocket-Accept: $accept\r\n" . self::POWERED_BY . "\r\n\r\n");
            $this->clients[$id]['open'] = true;
            $this->onOpen($id);
            if (isset($this->clients[$id]) && $this->clients[$id]['open']) {
                $this->readFrames($id);
            }
        }
    }

    private static function hasUpgradeToken(array $values): bool
    {
        foreach ($values as $value) {
            foreach (explode(',', $value) as $token) {
                if (strtolower(trim($token)) === 'upgrade') {
                    return true;
                }
            }
        }
        return false;
    }

    /** A non-101 answer as Ratchet serialises it (no body), then the connection is closed. */
    private function respond(int $id, int $status, ?string $reason = null, array $headers = [], string $body = ''): void
    {
        $reason ??= self::REASONS[$status] ?? 'OK';
        $headers[] = self::POWERED_BY;
        $this->send($id, "HTTP/1.1 $status $reason\r\n" . implode("\r\n", $headers) . "\r\n\r\n" . $body);
        $this->drop($id);
    }

    // ---- Core ----------------------------------------------------------------------------------

    private function onOpen(int $id): void
    {
        $headers = $this->clients[$id]['headers'];
        try {
            if (!$this->isTrustedConnection($headers)) {
                $this->closeWs($id);
            }
            $sid = $this->cookieSid($headers);
            if ($sid !== null) {
                $this->attachBrowser($sid, $id, $headers);
                return;
            }
            // A worker's internal connection: MOVIM_SESSION_ID (until v0.32.1) or MOVIM_WORKER_ID.
            $wid = Config::atLeast('v0.33')
                ? ($headers['movim_worker_id'][0] ?? null)
                : ($headers['movim_session_id'][0] ?? null);
            if ($wid !== null && isset($this->workers[$wid]) && isset($this->clients[$id])) {
                $this->attachInternal($wid, $id);
            }
        } catch (\Exception $e) {
            echo "An error has occurred: {$e->getMessage()}\n";
        }
    }

    /**
     * `isTrustedConnection`, to the letter: the daemon key, or Sec-Fetch-Site's first value, or else
     * the host of Origin's first value against the host of DAEMON_URL (case-sensitive). Without an
     * Origin, PHP warns ("Undefined array key 0", then parse_url(null)'s deprecation) and the warnings
     * go to errors.log, as in Movim.
     */
    private function isTrustedConnection(array $h): bool
    {
        $daemonKeyHeader = $h['movim_daemon_key'] ?? [];
        $secFetchSiteHeader = $h['sec-fetch-site'] ?? [];
        $origin = $h['origin'] ?? [];

        $sameOrigin = !empty($secFetchSiteHeader)
            ? $secFetchSiteHeader[0] == 'same-origin'
            : parse_url($origin[0], PHP_URL_HOST) == parse_url((string) $this->baseuri, PHP_URL_HOST);

        return (!empty($daemonKeyHeader) && $daemonKeyHeader[0] === $this->key) || $sameOrigin;
    }

    /** The MOVIM_SESSION_ID cookie of the request, if any. */
    private function cookieSid(array $headers): ?string
    {
        foreach ($headers['cookie'] ?? [] as $line) {
            foreach (explode(';', $line) as $pair) {
                [$name, $value] = array_pad(explode('=', trim($pair), 2), 2, '');
                if ($name === 'MOVIM_SESSION_ID' && $value !== '') {
                    return urldecode($value);
                }
            }
        }
        return null;
    }

    private function attachBrowser(string $sid, int $id, array $headers): void
    {
        if (!isset($this->sessions[$sid])) {
            $language = $headers['accept-language'][0] ?? '';
            if (Config::atLeast('v0.33')) {
                $wid = null;
                foreach ($this->workers as $candidate => $worker) {
                    if ($worker['alive'] && count($worker['sessions']) < self::MAX_SESSIONS) {
                        $wid = $candidate;
                        break;
                    }
                }
                $wid ??= $this->spawn(null, $language);
            } else {
                $wid = $this->spawn($sid, $language);
            }
            $this->sessions[$sid] = ['worker' => $wid, 'clients' => [], 'registered' => false, 'started' => false, 'language' => $language];
            $this->workers[$wid]['sessions'][$sid] = true;
            if (Config::atLeast('v0.33') && $this->workers[$wid]['internal'] !== null) {
                $this->spawnLinker($sid);
            }
        }
        // Attached even when onOpen closed it already (untrusted): Ratchet ran onClose for it before
        // the session existed, so it stays counted and the session's worker is not cleaned up.
        $this->sessions[$sid]['clients'][$id] = true;
        if (isset($this->clients[$id])) {
            $this->clients[$id]['sid'] = $sid;
        }
    }

    private function attachInternal(string $wid, int $id): void
    {
        $this->workers[$wid]['internal'] = $id;
        $this->clients[$id]['worker'] = $wid;
        if (Config::atLeast('v0.33')) {
            // SessionsWorker::attachInternal: a linker for each session waiting for it.
            foreach (array_keys($this->workers[$wid]['sessions']) as $sid) {
                $this->spawnLinker($sid);
            }
        } elseif (isset($this->sessions[$wid])) {
            // Until v0.32.1 Core tells the browser once the linker is connected.
            $this->messageOut($wid, json_encode(['func' => 'started']));
        }
    }

    /** Session::spawnLinker (v0.33+): `{"func":"new","sid":…,"browserLocale":…}` to the worker. */
    private function spawnLinker(string $sid): void
    {
        $internal = $this->workers[$this->sessions[$sid]['worker']]['internal'];
        $this->send($internal, self::frame(0x1, json_encode(['func' => 'new', 'sid' => $sid, 'browserLocale' => $this->sessions[$sid]['language']])));
    }

    /** Core::onMessage: browser → its worker; worker → the session's browsers. */
    private function onMessage(int $id, string $message): void
    {
        $client = $this->clients[$id];
        if (isset($client['sid'], $this->sessions[$client['sid']])) {
            $sid = $client['sid'];
            if (Config::atLeast('v0.33')) {
                $json = json_decode($message);
                if (!is_object($json)) {
                    return;
                }
                $json->sid = $sid;
                $message = json_encode($json);
            }
            $internal = $this->workers[$this->sessions[$sid]['worker']]['internal'] ?? null;
            if ($internal !== null) {
                $this->send($internal, self::frame(0x1, $message));
            }
            return;
        }
        if (!isset($client['worker'])) {
            return;
        }
        if (!Config::atLeast('v0.33')) {
            $this->messageOut($client['worker'], $message);
            return;
        }
        $json = json_decode($message);
        $sid = is_object($json) ? ($json->sid ?? null) : null;
        if ($sid === null || !isset($this->sessions[$sid])) {
            return;
        }
        if (isset($json->logout)) {
            $this->closeSession($sid);
        } elseif (isset($json->registered)) {
            $this->sessions[$sid]['registered'] = true;
        } elseif (isset($json->started)) {
            $this->sessions[$sid]['started'] = true;
        } else {
            $this->messageOut($sid, $message);
        }
    }

    private function messageOut(string $sid, string $message): void
    {
        foreach (array_keys($this->sessions[$sid]['clients'] ?? []) as $id) {
            $this->send($id, self::frame(0x1, $message));
        }
    }

    /** Core::onClose for a websocket that was open. */
    private function onClose(int $id): void
    {
        $sid = $this->clients[$id]['sid'] ?? null;
        if (isset($this->clients[$id]['worker'])) {
            $wid = $this->clients[$id]['worker'];
            if (isset($this->workers[$wid]) && $this->workers[$wid]['internal'] === $id) {
                $this->workers[$wid]['internal'] = null;
            }
        }
        if ($sid === null || !isset($this->sessions[$sid])) {
            return;
        }
        unset($this->sessions[$sid]['clients'][$id]);
        if (!Config::atLeast('v0.33')) {
            return; // the 5-second cleaner ends a linker left without clients
        }
        $wid = $this->sessions[$sid]['worker'];
        if (!$this->sessions[$sid]['registered']) {
            $this->forgetSession($sid);
        }
        if (isset($this->workers[$wid]) && (count($this->workers[$wid]['sessions']) === 0 || !$this->workers[$wid]['alive'])) {
            $this->terminate($wid);
        }
    }

    /** The periodic cleaner (Core::registerCleaner), every 5 seconds. */
    private function clean(): void
    {
        if (Config::atLeast('v0.33')) {
            foreach ($this->workers as $wid => $worker) {
                if (count($worker['sessions']) === 0) {
                    $this->terminate($wid);
                }
            }
            return;
        }
        foreach ($this->sessions as $sid => $session) {
            if (count($session['clients']) === 0 && !$session['registered']) {
                $this->terminate($session['worker']);
            }
            if (!isset($this->workers[$session['worker']])) {
                unset($this->sessions[$sid]);
            }
        }
    }

    // ---- workers -------------------------------------------------------------------------------

    /**
     * Starts a session worker the way Movim does: through /bin/sh, `exec PHP_BINARY -n
     * -dextension=<e>.so … -d=memory_limit=512M <script>`, with an explicit environment (nothing
     * else inherited), stdout read and dropped, stderr echoed (Worker.php says what runs).
     * Returns the worker's id: the session id until v0.32.1, a random 16-character id from v0.33.
     * proc_open drops the keys whose value is empty (false booleans), as it does for upstream's
     * React\ChildProcess\Process; /bin/sh adds PWD.
     */
    private function spawn(?string $sid, string $language): string
    {
        $config = fn (string $key, string $default) => Config::env($key, $default);
        $flag = fn (string $key) => in_array(strtolower((string) Config::env($key, 'false')), ['false', '(false)', '0', ''], true) ? '' : '1';
        $db = [
            'DB_DATABASE' => $config('DB_DATABASE', 'movim'), 'DB_DRIVER' => $config('DB_DRIVER', 'pgsql'),
            'DB_HOST' => $config('DB_HOST', 'localhost'), 'DB_PASSWORD' => $config('DB_PASSWORD', 'movim'),
            'DB_PORT' => $config('DB_PORT', '5432'), 'DB_USERNAME' => $config('DB_USERNAME', 'movim'),
        ];
        $daemon = ['DAEMON_DEBUG' => $flag('DAEMON_DEBUG'), 'DAEMON_PORT' => $config('DAEMON_PORT', '8080'), 'DAEMON_VERBOSE' => $flag('DAEMON_VERBOSE')];
        $baseuri = (string) $this->baseuri;

        if (Config::atLeast('v0.33')) {
            $wid = substr(bin2hex(random_bytes(8)), 0, 16);
            $script = 'sessionsworker.php ';
            $cwd = Config::ROOT . '/workers';
            $env = ['wid' => $wid, 'baseuri' => $baseuri] + $daemon + $db + ['key' => $this->key];
        } elseif (Config::atLeast('v0.32')) {
            $wid = $sid;
            $script = 'linker.php ' . $sid;
            $cwd = Config::ROOT . '/workers';
            $env = ['baseuri' => $baseuri] + $daemon + $db + ['key' => $this->key, 'language' => $language, 'sid' => $sid];
        } else {
            $wid = $sid;
            $script = 'linker.php ' . $sid;
            $cwd = null; // inherited: the daemon must run from the Movim root
            $env = ['sid' => $sid, 'baseuri' => $baseuri, 'language' => $language,
                'verbose' => $flag('DAEMON_VERBOSE'), 'debug' => $flag('DAEMON_DEBUG'), 'key' => $this->key,
                'port' => $config('DAEMON_PORT', '8080')];
        }

        $configuration = '-n ';
        foreach (self::extensions() as $extension) {
            $configuration .= '-dextension=' . $extension . '.so ';
        }
        $command = 'exec ' . PHP_BINARY . ' ' . $configuration . ' -d=memory_limit=512M ' . $script;
        $proc = proc_open($command, [0 => ['pipe', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['pipe', 'w']], $pipes, $cwd, $env);
        if (!is_resource($proc)) {
            throw new \RuntimeException("could not start a session worker: $command");
        }
        stream_set_blocking($pipes[2], false);
        $this->workers[$wid] = ['proc' => $proc, 'stdin' => $pipes[0], 'stderr' => $pipes[2], 'internal' => null, 'sessions' => [], 'alive' => true];
        return $wid;
    }

    /**
     * The extensions a worker loads: Session::$extensions until v0.30.1 (v0.29.2 with the seed's
     * load-openssl.patch), requiredExtensions() from v0.31 (app/Helpers/UtilsHelper.php), plus the
     * pgsql driver. Differs: the ones missing from the stand-in's Debian PHP (imagick, and any other
     * absent .so) are left out instead of producing PHP startup warnings.
     */
    private static function extensions(): array
    {
        if (!Config::atLeast('v0.30')) {
            $list = ['pdo', 'xml', 'imagick', 'curl', 'dom', 'mbstring', 'simplexml', 'openssl'];
        } elseif (!Config::atLeast('v0.32')) {
            $list = ['curl', 'dom', 'imagick', 'mbstring', 'openssl', 'pdo', 'simplexml', 'xml'];
        } else {
            $list = ['dom', 'imagick', 'mbstring', 'openssl', 'pdo', 'simplexml', 'xml'];
        }
        $list[] = 'pdo_pgsql';
        $dir = (string) ini_get('extension_dir');
        return array_values(array_filter($list, fn ($e) => is_file("$dir/$e.so")));
    }

    /** stderr of a worker: echoed (until v0.32.1 the `registered`/`started` markers are kept). */
    private function workerOutput($stream): void
    {
        foreach ($this->workers as $wid => $worker) {
            if ($worker['stderr'] !== $stream) {
                continue;
            }
            $data = Log::quietly(fn () => fread($stream, 65536));
            if ($data === false || ($data === '' && feof($stream))) {
                $this->workerExited($wid);
                return;
            }
            if (Config::atLeast('v0.33')) {
                echo $data;
            } elseif (str_contains($data, 'registered')) {
                if (isset($this->sessions[$wid])) {
                    $this->sessions[$wid]['registered'] = true;
                }
            } elseif (str_contains($data, 'started')) {
                if (isset($this->sessions[$wid])) {
                    $this->sessions[$wid]['started'] = true;
                }
            } else {
                echo $data;
            }
            return;
        }
    }

    /** The worker's `exit` listener: its sessions' browsers are closed (code 1000), rows deleted. */
    private function workerExited(string $wid): void
    {
        $worker = $this->workers[$wid];
        Log::quietly(function () use ($worker) {
            fclose($worker['stderr']);
            fclose($worker['stdin']);
            proc_close($worker['proc']);
        });
        $this->workers[$wid]['alive'] = false;
        foreach (array_keys($worker['sessions']) as $sid) {
            foreach (array_keys($this->sessions[$sid]['clients'] ?? []) as $id) {
                $this->closeWs($id);
            }
            $this->deleteDbSession($sid);
            if (Config::atLeast('v0.33')) {
                $this->forgetSession($sid);
            }
        }
        if (!Config::atLeast('v0.33')) {
            // Session::$process = null; the cleaner forgets the session.
            unset($this->workers[$wid]);
        }
    }

    private function terminate(string $wid): void
    {
        if (!isset($this->workers[$wid])) {
            return;
        }
        $worker = $this->workers[$wid];
        if ($worker['alive']) {
            Log::quietly(function () use ($worker) {
                proc_terminate($worker['proc']);
                fclose($worker['stderr']);
                fclose($worker['stdin']);
                proc_close($worker['proc']);
            });
        }
        foreach (array_keys($worker['sessions']) as $sid) {
            unset($this->sessions[$sid]);
        }
        unset($this->workers[$wid]);
    }

    private function closeSession(string $sid): void
    {
        foreach (array_keys($this->sessions[$sid]['clients']) as $id) {
            $this->closeWs($id);
        }
        $this->deleteDbSession($sid);
        $this->forgetSession($sid);
    }

    private function forgetSession(string $sid): void
    {
        $wid = $this->sessions[$sid]['worker'] ?? null;
        if ($wid !== null) {
            unset($this->workers[$wid]['sessions'][$sid]);
        }
        unset($this->sessions[$sid]);
    }

    private function deleteDbSession(string $sid): void
    {
        try {
            Db::connect()->prepare('DELETE FROM sessions WHERE id = ?')->execute([$sid]);
        } catch (\PDOException $e) {
            Log::error('sessions: ' . $e->getMessage());
        }
    }

    // ---- frames --------------------------------------------------------------------------------

    /** Client frames (masked): text to Core::onMessage, ping answered, close echoed then closed. */
    private function readFrames(int $id): void
    {
        while (isset($this->clients[$id]) && strlen($buf = $this->clients[$id]['buf']) >= 2) {
            $opcode = ord($buf[0]) & 0x0f;
            $masked = (ord($buf[1]) & 0x80) !== 0;
            $length = ord($buf[1]) & 0x7f;
            $offset = 2;
            if ($length === 126) {
                if (strlen($buf) < 4) {
                    return;
                }
                $length = unpack('n', substr($buf, 2, 2))[1];
                $offset = 4;
            } elseif ($length === 127) {
                if (strlen($buf) < 10) {
                    return;
                }
                $length = unpack('J', substr($buf, 2, 8))[1];
                $offset = 10;
            }
            $mask = $masked ? substr($buf, $offset, 4) : '';
            $offset += $masked ? 4 : 0;
            if (strlen($buf) < $offset + $length) {
                return;
            }
            $payload = substr($buf, $offset, $length);
            for ($i = 0; $masked && $i < $length; $i++) {
                $payload[$i] = $payload[$i] ^ $mask[$i % 4];
            }
            $this->clients[$id]['buf'] = substr($buf, $offset + $length);

            if ($opcode === 0x8) {
                $this->send($id, self::frame(0x8, $payload));
                $this->drop($id);
            } elseif ($opcode === 0x9) {
                $this->send($id, self::frame(0xA, $payload));
            } elseif ($opcode === 0x1 || $opcode === 0x2) {
                try {
                    $this->onMessage($id, $payload);
                } catch (\Exception $e) {
                    echo "An error has occurred: {$e->getMessage()}\n";
                }
            }
        }
    }

    public static function frame(int $opcode, string $payload): string
    {
        $length = strlen($payload);
        $head = chr(0x80 | $opcode);
        if ($length < 126) {
            $head .= chr($length);
        } elseif ($length < 65536) {
            $head .= chr(126) . pack('n', $length);
        } else {
            $head .= chr(127) . pack('J', $length);
        }
        return $head . $payload;
    }

    /** WsConnection::close(): a close frame with code 1000, then the TCP connection is closed. */
    private function closeWs(int $id): void
    {
        if (isset($this->clients[$id])) {
            $this->send($id, self::frame(0x8, pack('n', 1000)));
            $this->drop($id);
        }
    }

    // ---- API -----------------------------------------------------------------------------------

    private function answerApi(int $id, string $action): void
    {
        $linked = count($this->sessions);
        $started = count(array_filter($this->sessions, fn ($s) => $s['started']));
        $body = match (strtolower($action)) {
            'linked', 'session' => (string) $linked,
            'started' => (string) $started,
            'sessionstree' => $this->sessionsTree(),
            default => '',
        };
        $this->send($id, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " . strlen($body)
            . "\r\nConnection: close\r\n\r\n" . $body);
        $this->drop($id);
    }

    /** Core::dumpSessionsTree (v0.33): worker id => sid => clients, registered, started. */
    private function sessionsTree(): string
    {
        $tree = [];
        foreach ($this->workers as $wid => $worker) {
            $tree[$wid] = [];
            foreach (array_keys($worker['sessions']) as $sid) {
                $s = $this->sessions[$sid] ?? null;
                if ($s !== null) {
                    $tree[$wid][$sid] = ['clients' => count($s['clients']), 'registered' => $s['registered'], 'started' => $s['started']];
                }
            }
        }
        return json_encode($tree === [] ? new \stdClass() : $tree);
    }

    // ---- bytes ---------------------------------------------------------------------------------

    private function send(?int $id, string $bytes): void
    {
        if ($id !== null && isset($this->clients[$id])) {
            $stream = $this->clients[$id]['stream'];
            Log::quietly(fn () => fwrite($stream, $bytes));
        }
    }

    /** Closes the TCP connection; an open websocket goes through Core::onClose first. */
    private function drop(int $id): void
    {
        if (!isset($this->clients[$id])) {
            return;
        }
        $client = $this->clients[$id];
        unset($this->clients[$id]);
        if ($client['open']) {
            $this->clients[$id] = $client; // onClose looks the connection up
            $this->onClose($id);
            unset($this->clients[$id]);
        }
        Log::quietly(fn () => fclose($client['stream']));
    }
}
