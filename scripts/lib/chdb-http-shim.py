# A stand-in for ClickHouse's HTTP interface backed by chdb (an embedded current ClickHouse),
# to check kubetrail's SQL against a current release where no such server is reachable.
# Usage: chdb-http-shim.py PORT DATA_DIR. Only what kubetrail's client sends is handled.
import sys, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import threading
from chdb import session as chs

sess = chs.Session(sys.argv[2])
lock = threading.Lock()

class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path.startswith('/ping'):
            self.send_response(200); self.end_headers(); self.wfile.write(b'Ok.\n'); return
        self.send_response(404); self.end_headers()
    def do_POST(self):
        u = urllib.parse.urlparse(self.path)
        qs = urllib.parse.parse_qs(u.query)
        body = self.rfile.read(int(self.headers.get('Content-Length', 0))).decode()
        sql = qs['query'][0] + '\n' + body if 'query' in qs else body
        try:
            with lock:
                fmt = 'JSONCompact' if sql.rstrip().endswith('FORMAT JSONCompact') else 'CSV'
                if fmt == 'JSONCompact':
                    sql = sql.rstrip()[:-len('FORMAT JSONCompact')] + ' SETTINGS output_format_json_quote_64bit_integers=0 FORMAT JSONCompact'
                r = sess.query(sql, fmt)
                out = r.bytes() if hasattr(r, 'bytes') else bytes(str(r), 'utf8')
            self.send_response(200); self.end_headers(); self.wfile.write(out)
        except Exception as e:
            self.send_response(500); self.end_headers(); self.wfile.write(str(e).encode())

ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
