<?php
// Why this file exists: nginx hands every request that is not a static file to Movim's front
// controller through php-fpm. The stand-in boots like Movim and answers `/infos` like it, a tiny login
// page at `/` and `/login`, and 404 otherwise.
//  - Boot (`Bootstrap::boot()`, src/Movim/Bootstrap.php @ v0.30, v0.34.1): error handlers (Log.php),
//    `.env`, then until v0.32.1 `checkSystem()`: cache/, public/cache/ and LOG_PATH are created if
//    missing, else an exception (`Couldn’t create … directory`) that is logged — so on a read-only
//    root without a writable LOG_PATH, fpm fails at v0.30 … v0.32.1. The seed's v0.29.2 logs to stderr
//    and has no log check (its log-stderr.patch).
//  - `/infos`: route `infos` → App\Controllers\InfosController (JSON, no cookie) → widget Infos
//    (app/Widgets/Infos/Infos.php `display` @ v0.30, v0.34.1): url, language, whitelist, banner,
//    admins, description, unregister, (v0.33+) maxsessions, php_version, version (APP_VERSION, the
//    VERSION file with its `v`), (v0.33+) database, population, linked, started, connected, commit,
//    statistics. The counters come from the daemon's API and are 0 when it does not answer
//    (`requestAPI` returns false, cast to int: app/Helpers/UtilsHelper.php @ v0.29.2, v0.34.1).
//  - `/login` (until v0.31) caches the public URL in cache/baseuri for the daemon
//    (src/Movim/Controller/Front.php `handle` @ v0.30).
// Differs: a database failure answers 500 with the boot message (what real Movim answers is not
// established); `language` is always `en` and `statistics` is always empty (no presences table);
// `commit` is always `release`.

require dirname(__DIR__) . '/vendor/autoload.php';

use Shim\Api;
use Shim\Config;
use Shim\Db;
use Shim\Log;

Log::install();
Config::load();
if (!Config::atLeast('v0.33')) {
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

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH) ?: '/';
$version = Config::version();
$baseUri = '//' . ($_SERVER['HTTP_HOST'] ?? '') . '/';

if ($path === '/infos' || $path === '/infos/') {
    try {
        $db = Db::connect();
        $population = (int) $db->query('SELECT count(*) FROM users')->fetchColumn();
        $admins = $db->query('SELECT id FROM users WHERE admin ORDER BY id')->fetchAll(PDO::FETCH_COLUMN);
        $configuration = $db->query('SELECT * FROM configuration WHERE id = 1')->fetch() ?: [];
    } catch (PDOException $e) {
        Log::error('movim /infos: ' . $e->getMessage());
        http_response_code(500);
        header('Content-Type: text/plain');
        echo Config::logsToFiles()
            ? 'An error occured during the Movim boot check the ' . Config::logPath() . "error.log file\n"
            : "An error occured during the Movim boot check the standard error\n";
        exit;
    }
    $counter = fn (string $action) => (int) (Api::request($action) ?? 0);
    $connected = $counter('started');
    $banner = $configuration['banner'] ?? null;
    $whitelist = trim((string) ($configuration['xmppwhitelist'] ?? ''));
    $infos = [
        'url' => $baseUri,
        'language' => $configuration['locale'] ?? 'en',
        'whitelist' => $whitelist === '' ? [] : explode(',', $whitelist),
        'banner' => Config::atLeast('v0.33') && empty($banner) ? null : $banner,
        'admins' => $admins,
        'description' => $configuration['description'] ?? null,
        'unregister' => (bool) ($configuration['unregister'] ?? false),
    ];
    if (Config::atLeast('v0.33')) {
        $infos['maxsessions'] = (int) ($configuration['maxsessions'] ?? 0);
    }
    $infos['php_version'] = phpversion();
    $infos['version'] = $version;
    if (Config::atLeast('v0.33')) {
        $infos['database'] = Config::env('DB_DRIVER', 'pgsql');
    }
    $infos += [
        'population' => $population,
        'linked' => $counter('linked'),
        'started' => $connected,
        'connected' => $connected,
        'commit' => 'release',
        'statistics' => ['presences' => ['total' => 0, 'clients' => []]],
    ];
    header('Content-type: application/json');
    echo json_encode($infos);
    exit;
}

if ($path === '/' || $path === '/login') {
    if (!Config::atLeast('v0.32')) {
        file_put_contents(Config::cachePath() . 'baseuri', $baseUri);
    }
    header('Content-Type: text/html; charset=utf-8');
    echo "<!doctype html>\n<html><head><title>Movim</title><link rel=\"stylesheet\" href=\"/theme/style.css\"></head>\n"
        . "<body><h1>Movim $version</h1><p>Test-world stand-in of Movim's login page.</p></body></html>\n";
    exit;
}

http_response_code(404);
header('Content-Type: text/plain');
echo "Not found\n";
