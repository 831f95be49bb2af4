<?php
// Why this file exists: Movim's session worker, as far as an installer can see it. The daemon starts
// it (Daemon::spawn) with `php -n` and an explicit environment holding only a few keys, so everything
// else — LOG_PATH, CACHE_PATH, SSL_CERT_FILE — comes from `.env` or the defaults. What it does:
//  1. boots like Movim (`Bootstrap::boot()`, src/Movim/Bootstrap.php @ v0.30, v0.34.1): error handlers
//     first (Log::install), then `.env` with phpdotenv, immutable (Config::load);
//  2. until v0.32.1, `Bootstrap::checkSystem()`: `file_exists || @mkdir` of CACHE_PATH, public/cache/
//     and LOG_PATH, throwing `Couldn’t create … directory` (the seed's v0.29.2 drops the log check);
//     on a read-only root that `@mkdir`'s warning is logged (Movim's handler ignores `@`), and when
//     the log cannot be written PHP ends the worker with its uncaught-exception fatal error (exit
//     255) — printed on stdout (`-n`: display_errors' default), which the daemon drops: no trace;
//  3. connects back to ws://127.0.0.1:<port> with MOVIM_DAEMON_KEY and MOVIM_SESSION_ID (linker.php
//     @ v0.29.2, workers/linker.php @ v0.32) or MOVIM_WORKER_ID (workers/sessionsworker.php @ v0.33,
//     v0.34.1); from v0.33 the daemon asks for a linker per session (`{"func":"new"}`,
//     src/Movim/Daemon/LinkersManager.php `handleMessage`) and the linker says `started`
//     (src/Movim/Daemon/Linker.php `__construct`);
//  4. on `{"func":"register","host":…}` resolves and connects like `Linker::register` and
//     `handleClientDNS` (src/Movim/Daemon/Linker.php @ v0.34.1; linker.php @ v0.29.2): SRV
//     `_xmpps-client._tcp` (direct TLS) and `_xmpp-client._tcp` (STARTTLS), lower priority wins, ties
//     to direct TLS, else tcp://<host>:5222; TLS with SNI, peer_name = the login's domain,
//     allow_self_signed = false, PHP's verify_peer default and no cafile — OpenSSL's default store,
//     since `-n` leaves openssl.cafile unset and the environment carries no SSL_CERT_FILE. Once
//     connected it says `registered`;
//  5. on the login (`Login::ajaxLogin`), opens the XMPP stream, and when the server requires STARTTLS
//     upgrades the connection (`enableEncryption`): `TLS enabled` or `TLS error …` on stderr.
// Differs: no SASL, no roster, no widgets — the stand-in stops after TLS, and logs (logError) one line
// saying so. That line stands for what a real worker logs after a login (from v0.32 e.g. `XEP-0390:
// Wrong hash for …`, app/Info.php `checkCapabilityHash`): with no writable LOG_PATH the worker dies
// there, from v0.33 (no checkSystem) as before. DNS uses the system resolver (dns_get_record), not the
// first nameserver of /etc/resolv.conf; no connection_error/ssl_error frames reach the browser.

namespace Shim;

final class Worker
{
    /** @var resource the internal websocket to the daemon */
    private $ws;
    private string $buf = '';
    /** sid => ['host' => ?string, 'xmpp' => ?resource] */
    private array $linkers = [];

    public static function main(): void
    {
        Log::install();
        Config::load();
        if (!Config::atLeast('v0.33')) {
            self::checkSystem();
        }
        (new self())->run();
    }

    /** `Bootstrap::checkSystem` (src/Movim/Bootstrap.php @ v0.29.2 … v0.32.1). */
    private static function checkSystem(): void
    {
        if (!file_exists(Config::cachePath()) && !@mkdir(Config::cachePath())) {
            throw new \Exception('Couldn’t create cache directory');
        }
        if (!file_exists(Config::publicCachePath()) && !@mkdir(Config::publicCachePath())) {
            throw new \Exception('Couldn’t create public cache directory');
        }
        if (Config::logsToFiles() && !file_exists(Config::logPath()) && !@mkdir(Config::logPath())) {
            throw new \Exception('Couldn’t create log directory');
        }
    }

    /** `logOut`: `<sid> <type>   \n<log>\n` on stderr, coloured (app/Helpers/StringHelper.php `colorize`). */
    private static function logOut(string $log, ?string $sid = null, string $type = 'system'): void
    {
        $c = fn (string $s, int $color) => "\033[{$color}m{$s}\033[0m";
        fwrite(STDERR, $c($sid ?? '', 33) . ' ' . $c($type, 35) . "   \n" . $log . "\n");
    }

    private function run(): void
    {
        $perSession = !Config::atLeast('v0.33');
        $port = (int) ($perSession && !Config::atLeast('v0.32') ? getenv('port') : Config::env('DAEMON_PORT', '8080'));
        $headers = $perSession
            ? ['MOVIM_SESSION_ID' => (string) getenv('sid'), 'MOVIM_DAEMON_KEY' => (string) getenv('key')]
            : ['MOVIM_WORKER_ID' => (string) getenv('wid'), 'MOVIM_DAEMON_KEY' => (string) getenv('key')];
        $this->connect($port, $headers);
        if ($perSession) {
            $this->linkers[(string) getenv('sid')] = ['host' => null, 'xmpp' => null];
        }

        while (true) {
            $message = $this->readMessage();
            if ($message === null) {
                exit(0); // the daemon went away
            }
            $json = json_decode($message);
            if (!is_object($json) || !isset($json->func)) {
                continue;
            }
            $sid = $perSession ? (string) getenv('sid') : (string) ($json->sid ?? '');
            $this->handle($sid, $json);
        }
    }

    private function handle(string $sid, \stdClass $json): void
    {
        if ($json->func === 'new') {
            $this->linkers[$sid] = ['host' => null, 'xmpp' => null];
            self::logOut("\033[32mLinker created\033[0m", $sid);
            $this->writeOut($sid, ['func' => 'started']);
            return;
        }
        if (!isset($this->linkers[$sid])) {
            return;
        }
        if ($json->func === 'register' && is_string($json->host ?? null) && $this->linkers[$sid]['host'] === null) {
            $this->register($sid, $json->host);
        } elseif ($json->func === 'message' && ($json->b->f ?? null) === 'ajaxLogin') {
            $form = $json->b->p[0] ?? null;
            $this->login($sid, (string) ($form->username->value ?? ''));
        }
    }

    /** A frame to the browser: `{"func":…}`, from v0.33 with `"sid"`. */
    private function writeOut(string $sid, array $message): void
    {
        if (Config::atLeast('v0.33')) {
            $message['sid'] = $sid;
        }
        $this->sendText(json_encode($message));
    }

    private function register(string $sid, string $host): void
    {
        $this->linkers[$sid]['host'] = $host;
        $srv = function (string $name): array|false {
            $records = Log::quietly(fn () => dns_get_record($name, DNS_SRV));
            if (!$records) {
                return false;
            }
            usort($records, fn ($a, $b) => $a['pri'] <=> $b['pri']);
            return array_map(fn ($r) => ['priority' => $r['pri'], 'target' => $r['target'] === '' ? '.' : $r['target'], 'port' => $r['port']], $records);
        };
        $direct = $srv('_xmpps-client._tcp.' . $host);
        $starttls = $srv('_xmpp-client._tcp.' . $host);

        $target = $host;
        $port = 5222;
        $directTls = false;
        $blue = fn (string $s) => "\033[34m{$s}\033[0m";
        if ($direct !== false && $direct[0]['target'] !== '.' && $starttls !== false && $starttls[0]['target'] !== '.') {
            if ($starttls[0]['priority'] < $direct[0]['priority']) {
                [$target, $port] = [$starttls[0]['target'], $starttls[0]['port']];
                self::logOut($blue('Picked STARTTLS'), $sid);
            } else {
                [$target, $port, $directTls] = [$direct[0]['target'], $direct[0]['port'], true];
                self::logOut($blue('Picked DirectTLS'), $sid);
            }
        } elseif ($direct !== false && $direct[0]['target'] !== '.') {
            [$target, $port, $directTls] = [$direct[0]['target'], $direct[0]['port'], true];
            self::logOut($blue('Picked DirectTLS'), $sid);
        } elseif ($starttls !== false && $starttls[0]['target'] !== '.') {
            [$target, $port] = [$starttls[0]['target'], $starttls[0]['port']];
            self::logOut($blue('Picked STARTTLS'), $sid);
        }

        $socket = ($directTls ? 'tls://' : 'tcp://') . $target . ':' . $port;
        self::logOut($blue('Connect to ' . $socket . ', peer_name: ' . $target), $sid);
        $context = stream_context_create(['ssl' => self::tlsOptions($host)]);
        $errno = 0;
        $error = '';
        $xmpp = Log::quietly(function () use ($socket, $context, &$errno, &$error) {
            return stream_socket_client($socket, $errno, $error, 5.0, STREAM_CLIENT_CONNECT, $context);
        });
        if ($xmpp === false) {
            $reason = $error !== '' ? $error : 'unknown error';
            self::logOut("\033[31mConnection to $socket failed: $reason\033[0m", $sid);
            return;
        }
        stream_set_timeout($xmpp, 10);
        $this->linkers[$sid]['xmpp'] = $xmpp;

        // "And we say that we are ready!"
        if (Config::atLeast('v0.33')) {
            $this->sendText(json_encode(['registered' => true, 'sid' => $sid]));
        } else {
            fwrite(STDERR, 'registered');
        }
        $this->writeOut($sid, ['func' => 'registered']);
    }

    /** The TLS context of Linker.php: SNI, the login's domain as peer name, no self-signed. */
    private static function tlsOptions(string $host): array
    {
        return ['SNI_enabled' => true, 'peer_name' => $host, 'allow_self_signed' => false];
    }

    private function login(string $sid, string $login): void
    {
        $xmpp = $this->linkers[$sid]['xmpp'];
        $host = $this->linkers[$sid]['host'];
        if ($xmpp !== null && $host !== null) {
            $blue = fn (string $s) => "\033[34m{$s}\033[0m";
            fwrite($xmpp, "<?xml version='1.0'?><stream:stream to='" . htmlspecialchars($host, ENT_QUOTES | ENT_XML1)
                . "' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>");
            $features = self::readUntil($xmpp, '</stream:features>');
            // Moxl's STARTTLS payload asks for TLS only when the server requires it.
            if (preg_match('#<starttls[^>]*>.*?<required\s*/>#s', $features)) {
                fwrite($xmpp, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
                if (str_contains(self::readUntil($xmpp, '/>'), '<proceed')) {
                    self::logOut($blue('Enable TLS on the socket'), $sid);
                    foreach (self::tlsOptions($host) as $option => $value) {
                        stream_context_set_option($xmpp, 'ssl', $option, $value);
                    }
                    $lastError = null;
                    set_error_handler(function (int $no, string $message) use (&$lastError): bool {
                        $lastError = $message;
                        return true;
                    });
                    $ok = stream_socket_enable_crypto($xmpp, true, STREAM_CRYPTO_METHOD_TLS_CLIENT);
                    restore_error_handler();
                    self::logOut($blue($ok === true ? 'TLS enabled' : 'TLS error ' . ($lastError ?? 'Unable to complete TLS handshake')), $sid);
                }
            }
        }
        // The stand-in stops here; see the header of this file.
        \Shim\Log::error("Login: the test-world stand-in does not authenticate $login");
    }

    private static function readUntil($stream, string $end): string
    {
        $got = '';
        while (!str_contains($got, $end)) {
            $chunk = fread($stream, 8192);
            if ($chunk === false || $chunk === '') {
                break;
            }
            $got .= $chunk;
        }
        return $got;
    }

    // ---- the internal websocket (a client: frames are masked) ----------------------------------

    private function connect(int $port, array $headers): void
    {
        $ws = stream_socket_client("tcp://127.0.0.1:$port", $errno, $error, 5.0);
        if ($ws === false) {
            throw new \RuntimeException("cannot reach the daemon on 127.0.0.1:$port: $error");
        }
        $key = base64_encode(random_bytes(16));
        // As Ratchet\Client\Connector (src/Connector.php in ratchetphp/Pawl @ v0.4.3) sends it: its
        // User-Agent and `Origin: http://<host>` (so the daemon's Origin check warns about nothing).
        $request = "GET / HTTP/1.1\r\nHost: 127.0.0.1:$port\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            . "Sec-WebSocket-Key: $key\r\nSec-WebSocket-Version: 13\r\nUser-Agent: Ratchet-Pawl/0.4.1\r\n"
            . "Origin: http://127.0.0.1\r\n";
        foreach ($headers as $name => $value) {
            $request .= "$name: $value\r\n";
        }
        fwrite($ws, $request . "\r\n");
        $head = '';
        while (!str_contains($head, "\r\n\r\n")) {
            $chunk = fread($ws, 4096);
            if ($chunk === false || $chunk === '') {
                throw new \RuntimeException('the daemon closed the internal websocket during the handshake');
            }
            $head .= $chunk;
        }
        [$head, $this->buf] = explode("\r\n\r\n", $head, 2);
        if (!str_starts_with($head, 'HTTP/1.1 101')) {
            throw new \RuntimeException('the daemon refused the internal websocket: ' . strtok($head, "\r\n"));
        }
        $this->ws = $ws;
    }

    private function sendText(string $payload): void
    {
        $length = strlen($payload);
        $head = chr(0x81);
        if ($length < 126) {
            $head .= chr(0x80 | $length);
        } elseif ($length < 65536) {
            $head .= chr(0x80 | 126) . pack('n', $length);
        } else {
            $head .= chr(0x80 | 127) . pack('J', $length);
        }
        $mask = random_bytes(4);
        for ($i = 0; $i < $length; $i++) {
            $payload[$i] = $payload[$i] ^ $mask[$i % 4];
        }
        fwrite($this->ws, $head . $mask . $payload);
    }

    /** The next text message from the daemon, or null once it closed. */
    private function readMessage(): ?string
    {
        while (true) {
            if (strlen($this->buf) >= 2) {
                $opcode = ord($this->buf[0]) & 0x0f;
                $length = ord($this->buf[1]) & 0x7f;
                $offset = 2;
                if ($length === 126 && strlen($this->buf) >= 4) {
                    $length = unpack('n', substr($this->buf, 2, 2))[1];
                    $offset = 4;
                } elseif ($length === 127 && strlen($this->buf) >= 10) {
                    $length = unpack('J', substr($this->buf, 2, 8))[1];
                    $offset = 10;
                }
                if ($length < 126 || $offset > 2) {
                    if (strlen($this->buf) >= $offset + $length) {
                        $payload = substr($this->buf, $offset, $length);
                        $this->buf = substr($this->buf, $offset + $length);
                        if ($opcode === 0x8) {
                            return null;
                        }
                        if ($opcode === 0x1) {
                            return $payload;
                        }
                        continue;
                    }
                }
            }
            $chunk = fread($this->ws, 65536);
            if ($chunk === false || ($chunk === '' && feof($this->ws))) {
                return null;
            }
            $this->buf .= $chunk;
        }
    }
}
