<?php
// Why this file exists: the running part of Movim's daemon as movim-setup sees it from outside. One
// stream_select loop serves
//  - the websocket port (DAEMON_INTERFACE:DAEMON_PORT): a plain GET gets 426, a valid RFC 6455
//    handshake gets 101 only when the Origin's host equals DAEMON_URL's host (403 otherwise), and an
//    open websocket gets one text frame, pong for ping and a close reply for close;
//  - the API socket cache/socketapi.sock (HTTP over a unix socket, action = Host header) that fpm's
//    /infos and `daemon.php sessionsTree` ask.
// Faults: daemon-exits leaves the loop with code 0 after about a second; never-healthy answers 503 on
// the websocket port while the API keeps working.

namespace Shim;

final class Daemon
{
    private const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

    /** @var resource */
    private $wsServer;
    /** @var resource */
    private $apiServer;
    /** id => ['stream' => resource, 'kind' => 'ws'|'api', 'buf' => string, 'open' => bool] */
    private array $clients = [];

    private function __construct(private string $originHost, private bool $debug, private string $fault)
    {
    }

    /** Binds both sockets; throws with the reason when one cannot be bound. */
    public static function listen(string $interface, int $port, string $apiSocket, string $originHost, bool $debug): self
    {
        $daemon = new self($originHost, $debug, Config::fault());
        $ws = @stream_socket_server("tcp://$interface:$port", $errno, $error);
        if ($ws === false) {
            throw new \RuntimeException("Failed to listen on \"tcp://$interface:$port\": $error");
        }
        if (file_exists($apiSocket)) {
            @unlink($apiSocket);
        }
        $api = @stream_socket_server("unix://$apiSocket", $errno, $error);
        if ($api === false) {
            throw new \RuntimeException("Failed to listen on \"unix://$apiSocket\": $error");
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
            $write = $except = null;
            if (@stream_select($read, $write, $except, 0, 200000) === false) {
                continue; // interrupted by a signal
            }
            foreach ($read as $stream) {
                if ($stream === $this->wsServer) {
                    $this->accept($stream, 'ws');
                } elseif ($stream === $this->apiServer) {
                    $this->accept($stream, 'api');
                } else {
                    $this->receive((int) $stream);
                }
            }
        }
    }

    private function accept($server, string $kind): void
    {
        $stream = @stream_socket_accept($server, 0);
        if ($stream !== false) {
            stream_set_timeout($stream, 5);
            $this->clients[(int) $stream] = ['stream' => $stream, 'kind' => $kind, 'buf' => '', 'open' => false];
        }
    }

    private function receive(int $id): void
    {
        $client = &$this->clients[$id];
        $data = fread($client['stream'], 65536);
        if ($data === false || ($data === '' && feof($client['stream']))) {
            $this->close($id);
            return;
        }
        $client['buf'] .= $data;
        if ($client['open']) {
            $this->readFrames($id);
            return;
        }
        $end = strpos($client['buf'], "\r\n\r\n");
        if ($end === false) {
            if (strlen($client['buf']) > 65536) {
                $this->respond($id, 431, 'Request Header Fields Too Large');
            }
            return;
        }
        [$requestLine, $headers] = self::parseHead(substr($client['buf'], 0, $end));
        $body = substr($client['buf'], $end + 4);
        if ($client['kind'] === 'api') {
            if (strlen($body) < (int) ($headers['content-length'] ?? 0)) {
                return; // wait for the rest of the body
            }
            $this->answerApi($id, $headers['host'] ?? '');
        } else {
            $client['buf'] = $body;
            $this->answerWebsocket($id, $requestLine, $headers);
        }
    }

    private static function parseHead(string $head): array
    {
        $lines = explode("\r\n", $head);
        $requestLine = array_shift($lines);
        $headers = [];
        foreach ($lines as $line) {
            $colon = strpos($line, ':');
            if ($colon !== false) {
                $headers[strtolower(trim(substr($line, 0, $colon)))] = trim(substr($line, $colon + 1));
            }
        }
        return [$requestLine, $headers];
    }

    private function answerWebsocket(int $id, string $requestLine, array $headers): void
    {
        $origin = $headers['origin'] ?? '';
        $log = fn (int $status) => $this->debug
            && print("websocket $status: $requestLine (Origin: " . ($origin ?: '-') . ")\n");

        if ($this->fault === 'never-healthy') {
            $log(503);
            $this->respond($id, 503, 'Service Unavailable');
            return;
        }
        $isUpgrade = strtolower($headers['upgrade'] ?? '') === 'websocket'
            && str_contains(strtolower($headers['connection'] ?? ''), 'upgrade');
        if (!$isUpgrade) {
            $log(426);
            $this->respond($id, 426, 'Upgrade Required', ['Sec-WebSocket-Version: 13']);
            return;
        }
        $key = $headers['sec-websocket-key'] ?? '';
        $decoded = base64_decode($key, true);
        if (!str_starts_with($requestLine, 'GET ') || $decoded === false || strlen($decoded) !== 16
            || ($headers['sec-websocket-version'] ?? '') !== '13') {
            $log(400);
            $this->respond($id, 400, 'Bad Request', ['Sec-WebSocket-Version: 13']);
            return;
        }
        $originHost = strtolower((string) parse_url($origin, PHP_URL_HOST));
        if ($originHost === '' || $originHost !== $this->originHost) {
            $log(403);
            $this->respond($id, 403, 'Forbidden');
            return;
        }

        $log(101);
        $accept = base64_encode(sha1($key . self::WS_GUID, true));
        $this->send($id, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            . "Sec-WebSocket-Accept: $accept\r\n\r\n");
        $this->clients[$id]['open'] = true;
        $this->send($id, self::frame(0x1, json_encode(['func' => 'daemon', 'version' => Config::version()])));
        $this->readFrames($id);
    }

    /** Client frames are masked; answers ping and close, ignores the rest. */
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
                $this->send($id, self::frame(0x8, substr($payload, 0, 2)));
                $this->close($id);
            } elseif ($opcode === 0x9) {
                $this->send($id, self::frame(0xA, $payload));
            }
        }
    }

    private static function frame(int $opcode, string $payload): string
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

    private function answerApi(int $id, string $action): void
    {
        $sessions = count(array_filter($this->clients, fn ($c) => $c['kind'] === 'ws' && $c['open']));
        $body = match (strtolower($action)) {
            'linked', 'started', 'session' => (string) $sessions,
            // One worker holding the open websockets, in the shape of Movim's sessions tree.
            'sessionstree' => json_encode($sessions === 0 ? new \stdClass() : ['worker-1' => array_fill_keys(
                array_map(fn ($n) => "websocket-$n", range(1, $sessions)),
                ['registered' => true, 'started' => true, 'clients' => 1]
            )]),
            default => '',
        };
        $this->respond($id, 200, 'OK', ['Content-Type: text/plain'], $body);
    }

    private function respond(int $id, int $status, string $reason, array $headers = [], ?string $body = null): void
    {
        $body ??= "$reason\n";
        $headers[] = 'Content-Length: ' . strlen($body);
        $headers[] = 'Connection: close';
        $this->send($id, "HTTP/1.1 $status $reason\r\n" . implode("\r\n", $headers) . "\r\n\r\n" . $body);
        $this->close($id);
    }

    private function send(int $id, string $bytes): void
    {
        if (isset($this->clients[$id])) {
            @fwrite($this->clients[$id]['stream'], $bytes);
        }
    }

    private function close(int $id): void
    {
        if (isset($this->clients[$id])) {
            @fclose($this->clients[$id]['stream']);
            unset($this->clients[$id]);
        }
    }
}
