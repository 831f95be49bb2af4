#!/usr/bin/env php
<?php
// Why this file exists: `php daemon.php <command>` is Movim's console, and movim-setup drives four of
// its commands. The stand-in keeps their observable behaviour, quirks included:
//   start [--debug]      exits 0 with a message (not an error code) when migrations are pending,
//                        DAEMON_URL is missing or the cache directories cannot be created; otherwise
//                        deletes every session, writes cache/vapid_keys.json once and serves (Daemon.php)
//   sessionsTree         exits 0 when the running daemon answers on cache/socketapi.sock, 1 otherwise
//   setAdmin <jid> [-r]  records (or removes) the admin flag of a user
//   config --key=value   stores pod settings (xmppdomain, description, info, timezone)

require __DIR__ . '/vendor/autoload.php';

use Shim\Api;
use Shim\Config;
use Shim\Daemon;
use Shim\Db;
use Shim\Migrations;

$command = $argv[1] ?? 'list';
$args = array_slice($argv, 2);

try {
    exit(match ($command) {
        'start' => start(in_array('--debug', $args, true) || in_array('-d', $args, true)),
        'sessionsTree' => sessionsTree(),
        'setAdmin' => setAdmin($args),
        'config' => configure($args),
        'list' => usage(0),
        default => usage(1, "Command \"$command\" is not defined."),
    });
} catch (Throwable $e) {
    fwrite(STDERR, "\n  [" . get_class($e) . "]\n  " . $e->getMessage() . "\n\n");
    exit(1);
}

function usage(int $code, string $error = ''): int
{
    if ($error !== '') {
        fwrite(STDERR, "$error\n");
    }
    echo "Movim " . Config::version() . " (test-world stand-in)\n\nAvailable commands:\n"
        . "  start         Start the daemon\n  sessionsTree  Display the current sessions tree\n"
        . "  setAdmin      Set an account admin\n  config        Change the configuration\n";
    return $code;
}

function start(bool $debug): int
{
    $db = Db::connect();
    if ((new Migrations($db))->pending()) {
        echo "The database needs to be migrated before running the daemon\n";
        echo "To migrate the database run\nphp vendor/bin/phinx migrate\n";
        return 0;
    }

    $url = Config::env('DAEMON_URL');
    $host = $url === null ? null : parse_url(str_contains($url, '://') ? $url : 'http://' . ltrim($url, '/'), PHP_URL_HOST);
    if (!$host) {
        echo "Please load the login page once before starting the daemon to cache the public URL\n";
        echo "or configure DAEMON_URL in .env\n";
        return 0;
    }

    foreach ([Config::cachePath(), Config::publicCachePath()] as $dir) {
        if (!is_dir($dir) && !@mkdir($dir, 0755, true)) {
            echo "Couldn’t create directory $dir\n";
            return 0;
        }
    }

    $db->exec('DELETE FROM sessions');
    if ((int) $db->query('SELECT count(*) FROM users WHERE admin')->fetchColumn() === 0) {
        echo "Please set at least one user as an admin once its account is logged in\n";
        echo "To set an existing user admin\nphp daemon.php setAdmin {jid}\n\n";
    }

    $vapid = Config::cachePath() . 'vapid_keys.json';
    if (!file_exists($vapid)) {
        echo "Generate and store the Push Notification VAPID keys\n";
        $b64 = fn (int $n) => rtrim(strtr(base64_encode(random_bytes($n)), '+/', '-_'), '=');
        if (@file_put_contents($vapid, json_encode(['publicKey' => $b64(65), 'privateKey' => $b64(32)])) === false) {
            fwrite(STDERR, "Warning: could not write $vapid\n");
        }
    }

    $interface = Config::env('DAEMON_INTERFACE', 'localhost');
    $port = (int) Config::env('DAEMON_PORT', '8080');
    $daemon = Daemon::listen($interface, $port, Config::apiSocket(), strtolower($host), $debug);

    echo "Movim daemon launched\n";
    echo 'Base URL: ' . rtrim($url, '/') . "/\n";
    echo "Listening on $interface:$port, API on " . Config::apiSocket() . "\n";
    if ($debug) {
        echo "\nDebug is enabled, websocket requests are logged here\n";
    }
    return $daemon->run();
}

function sessionsTree(): int
{
    $tree = Api::request('sessionstree');
    if ($tree === null) {
        echo "Cannot get the information, did you tried with the daemon user?\n";
        return 1;
    }
    $workers = json_decode($tree, true) ?: [];
    $sessions = array_sum(array_map('count', $workers));
    echo "⚙️  Movim Daemon 🔧 " . count($workers) . " 👤 $sessions\n";
    foreach ($workers as $worker => $list) {
        echo "╰─ 🔧 $worker (" . count($list) . ")\n";
        foreach ($list as $sid => $session) {
            echo "   ╰─ 👤 🟢 $sid ({$session['clients']})\n";
        }
    }
    return 0;
}

function setAdmin(array $args): int
{
    $remove = (bool) array_intersect($args, ['-r', '--remove']);
    $jid = current(array_filter($args, fn ($a) => !str_starts_with($a, '-')));
    if (!$jid) {
        fwrite(STDERR, "Not enough arguments (missing: \"jid\").\n");
        return 1;
    }
    // Movim requires the user to have logged in once; the stand-in has no XMPP login, so it records
    // the user if needed.
    $db = Db::connect();
    $db->prepare('INSERT INTO users (id, admin) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET admin = EXCLUDED.admin, updated_at = now()')
        ->execute([$jid, $remove ? 'false' : 'true']);
    echo $remove ? "User $jid is not admin anymore\n" : "User $jid is now admin\n";
    return 0;
}

function configure(array $args): int
{
    $known = ['xmppdomain', 'description', 'info', 'timezone'];
    $values = [];
    for ($i = 0; $i < count($args); $i++) {
        if (!preg_match('/^--([a-z]+)(?:=(.*))?$/s', $args[$i], $m)) {
            fwrite(STDERR, "Unexpected argument \"{$args[$i]}\".\n");
            return 1;
        }
        if (!in_array($m[1], $known, true)) {
            fwrite(STDERR, "The \"--{$m[1]}\" option does not exist.\n");
            return 1;
        }
        $values[$m[1]] = array_key_exists(2, $m) ? $m[2] : ($args[++$i] ?? '');
    }

    $db = Db::connect();
    $db->exec('INSERT INTO configuration (id) VALUES (1) ON CONFLICT (id) DO NOTHING');
    foreach ($values as $key => $value) {
        $db->prepare("UPDATE configuration SET $key = ?, updated_at = now() WHERE id = 1")->execute([$value]);
    }
    foreach ($db->query('SELECT ' . implode(', ', $known) . ' FROM configuration WHERE id = 1')->fetch() as $key => $value) {
        echo str_pad($key, 12) . ' ' . ($value ?? '') . "\n";
    }
    return 0;
}
