<?php
// Why this file exists: fpm and the CLI ask the running daemon for its state over the unix socket
// cache/socketapi.sock, as Movim's requestAPI() does (HTTP over a unix socket; the action is the
// request's host, e.g. `http://started/`). Returns null when the daemon does not answer.

namespace Shim;

final class Api
{
    public static function request(string $action, float $timeout = 2.0): ?string
    {
        // Movim's requestAPI goes through ReactPHP: no PHP warning when the daemon is down.
        $socket = Log::quietly(fn () => stream_socket_client('unix://' . Config::apiSocket(), $errno, $error, $timeout));
        if ($socket === false) {
            return null;
        }
        stream_set_timeout($socket, (int) ceil($timeout));
        fwrite($socket, "GET / HTTP/1.1\r\nHost: $action\r\nConnection: close\r\n\r\n");
        $response = stream_get_contents($socket);
        fclose($socket);
        if (!is_string($response) || !preg_match('#^HTTP/1\.[01] 200 #', $response)) {
            return null;
        }
        $parts = explode("\r\n\r\n", $response, 2);
        return $parts[1] ?? '';
    }
}
