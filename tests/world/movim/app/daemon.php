#!/usr/bin/env php

<?php
// Why this file exists: `php daemon.php <command>` is Movim's console (daemon.php, a Symfony Console
// application after `Bootstrap::boot(true)`), and movim-setup drives four of its commands. Like
// upstream's, this file has a blank line before `<?php`, so every command prints an empty line first.
//   start [--debug]      DaemonCommand's checks in upstream's order and with its exit codes (see
//                        `start` below and README.md), then serves (Daemon.php)
//   sessionsTree         exits 0 when the running daemon answers on cache/socketapi.sock, 1 otherwise
//   setAdmin <jid> [-r]  records (or removes) the admin flag of a user
//   config --key=value   stores pod settings (xmppdomain, description, info, timezone)

require __DIR__ . '/vendor/autoload.php';

use Shim\Api;
use Shim\Config;
use Shim\Daemon;
use Shim\Db;
use Shim\Log;
use Shim\Migrations;

$command = $argv[1] ?? 'list';
$args = array_slice($argv, 2);

Log::install();

// Symfony Console turns an exception into its code (1 when 0) after rendering it on stderr; PHP
// errors (`Error`) are not caught and end as PHP's uncaught-error exit, 255.
try {
    exit(match ($command) {
        'start' => start(in_array('--debug', $args, true) || in_array('-d', $args, true)),
        'sessionsTree' => sessionsTree(),
        'setAdmin' => setAdmin($args),
        'config' => configure($args),
        'list' => usage(0),
        default => usage(1, "Command \"$command\" is not defined."),
    });
} catch (Exception $e) {
    fwrite(STDERR, "\n  [" . get_class($e) . "]\n  " . $e->getMessage() . "\n\n");
    $code = $e->getCode();
    exit(is_int($code) && $code > 0 ? min($code, 255) : 1);
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
    // The order and the messages of `DaemonCommand::execute` (src/Movim/Console/DaemonCommand.php
    // @ v0.29.2, v0.30, v0.32, v0.33, v0.34.1). `exit;` there is status 0.
    $db = Db::connect();
    if ((new Migrations($db))->pending()) {
        echo "The database needs to be migrated before running the daemon\n";
        echo "To migrate the database run\n";
        echo Config::atLeast('v0.32') ? "composer movim:migrate\n" : "php vendor/bin/phinx migrate\n";
        return 0;
    }

    // (v0.31+ checks the PHP extensions here, exit 1 on a missing one: the stand-in has no such check.)

    $url = Config::env('DAEMON_URL');
    if ($url !== null) {
        // A scheme-less DAEMON_URL is validated with one added (`http://` until v0.31, `https://`
        // from v0.32), then kept as written. An invalid one leaves $baseuri undefined: PHP warns
        // where it is used, and no Origin is trusted.
        $scheme = Config::atLeast('v0.32') ? 'https://' : 'http://';
        $enforced = parse_url($url, PHP_URL_SCHEME) ? $url : $scheme . ltrim($url, '/');
        if (filter_var($enforced, FILTER_VALIDATE_URL)) {
            $baseuri = rtrim($url, '/') . '/';
        }
    } elseif (!Config::atLeast('v0.32') && file_exists(Config::cachePath() . 'baseuri')) {
        // Until v0.31 fpm caches its public URL there on every page view (src/Movim/Controller/Front.php).
        $baseuri = file_get_contents(Config::cachePath() . 'baseuri');
    } elseif (Config::atLeast('v0.32')) {
        echo "Please configure DAEMON_URL in .env\n";
        return 0;
    } else {
        echo "Please load the login page once before starting the daemon to cache the public URL\n";
        echo "or configure DAEMON_URL in .env\n";
        return 0;
    }

    // From v0.33 the daemon creates its directories (`checkDirectories`: file_exists || @mkdir, not
    // recursive, no writability test). Before, only fpm and the workers check theirs, at boot.
    if (Config::atLeast('v0.33')) {
        $failed = [];
        foreach ([Config::cachePath(), Config::publicCachePath(), Config::publicImagesPath(), Config::logPath()] as $dir) {
            if (!file_exists($dir) && !@mkdir($dir)) {
                $failed[] = $dir;
            }
        }
        if ($failed) {
            foreach ($failed as $dir) {
                echo "Can’t create $dir directory\n";
            }
            echo "You can create them yourself or let the daemon create them for you.\n";
            echo "In both case they should be writable by the same system user that is running the daemon.\n";
            return 0;
        }
    }

    if ((int) $db->query('SELECT count(*) FROM users WHERE admin')->fetchColumn() === 0) {
        echo "Please set at least one user as an admin once its account is logged in\n";
        echo "To set an existing user admin\nphp daemon.php setAdmin {jid}\n\n";
    }

    echo "Movim daemon launched\n";
    echo 'Base URL: ' . $baseuri . "\n";
    if ($debug) {
        echo "\nDebug is enabled, check the logs in syslog or " . Config::ROOT . "/log/\n";
    }
    // As with the seed's php-opcache installed and opcache.enable_cli off (the stand-in has no opcache).
    echo "Opcache is disabled, it is strongly advised to enable it in PHP CLI php.ini\n";
    echo "Set opcache.enable=1 and opcache.enable_cli=1 in the PHP CLI ini file\n";

    // `Core::__construct`: everyone is logged out, stale CSS/JS go, the push keys are made once.
    $db->exec('DELETE FROM sessions');
    array_map('unlink', array_merge(glob(Config::publicCachePath() . '*.css') ?: [], glob(Config::publicCachePath() . '*.js') ?: []));
    $vapid = Config::cachePath() . 'vapid_keys.json';
    if (!file_exists($vapid)) {
        echo "Generate and store the Push Notification VAPID keys\n";
        $b64 = fn (int $n) => rtrim(strtr(base64_encode(random_bytes($n)), '+/', '-_'), '=');
        file_put_contents($vapid, json_encode(['publicKey' => $b64(65), 'privateKey' => $b64(32)]));
    }

    $interface = Config::env('DAEMON_INTERFACE', Config::atLeast('v0.32') ? '127.0.0.1' : 'localhost');
    $port = (int) Config::env('DAEMON_PORT', '8080');
    $daemon = Daemon::listen($interface, $port, Config::apiSocket(), $baseuri ?? null);
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
