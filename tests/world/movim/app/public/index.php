<?php
// Why this file exists: nginx hands every request that is not a static file to Movim's front
// controller through php-fpm. The stand-in answers `/infos` like Movim's Infos widget (JSON with the
// version and the daemon's counters, asked over cache/socketapi.sock; null counters when the daemon is
// down), a tiny login page at `/`, and 404 otherwise.

require dirname(__DIR__) . '/vendor/autoload.php';

use Shim\Api;
use Shim\Config;
use Shim\Db;

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH) ?: '/';
$version = Config::version();

if ($path === '/infos' || $path === '/infos/') {
    try {
        $db = Db::connect();
        $population = (int) $db->query('SELECT count(*) FROM users')->fetchColumn();
        $admins = $db->query('SELECT id FROM users WHERE admin ORDER BY id')->fetchAll(PDO::FETCH_COLUMN);
        $xmppdomain = $db->query('SELECT xmppdomain FROM configuration WHERE id = 1')->fetchColumn() ?: null;
    } catch (Throwable $e) {
        // Movim cannot render /infos without its database either.
        error_log('movim /infos: ' . $e->getMessage());
        http_response_code(500);
        header('Content-Type: text/plain');
        echo "An error occured during the Movim boot check the standard error\n";
        exit;
    }
    $counter = fn (string $action) => ($v = Api::request($action)) === null ? null : (int) $v;
    $started = $counter('started');
    header('Content-Type: application/json');
    echo json_encode([
        'url' => '//' . ($_SERVER['HTTP_HOST'] ?? '') . '/',
        'version' => $version,
        'php_version' => PHP_VERSION,
        'population' => $population,
        'admins' => $admins,
        'xmppdomain' => $xmppdomain,
        'linked' => $counter('linked'),
        'started' => $started,
        'connected' => $started,
        'commit' => 'release',
    ]) . "\n";
    exit;
}

if ($path === '/' || $path === '/login') {
    header('Content-Type: text/html; charset=utf-8');
    echo "<!doctype html>\n<html><head><title>Movim</title><link rel=\"stylesheet\" href=\"/theme/style.css\"></head>\n"
        . "<body><h1>Movim $version</h1><p>Test-world stand-in of Movim's login page.</p></body></html>\n";
    exit;
}

http_response_code(404);
header('Content-Type: text/plain');
echo "Not found\n";
