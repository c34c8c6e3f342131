"""HTTPS on loopback for the real-browser tests: a throw-away self-signed
certificate for a few host names, and a threaded wsgiref server that
answers for all of them on one free port (the Host header picks the
site)."""

import contextlib
import datetime
import ipaddress
import socketserver
import ssl
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer


def make_certificate(names, directory):
    """Write a self-signed certificate for the DNS ``names`` (and
    127.0.0.1), valid for a day, and its key into ``directory``; return
    ``(certfile, keyfile)``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt_names = [x509.DNSName(name) for name in names]
    alt_names.append(x509.IPAddress(ipaddress.ip_address('127.0.0.1')))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    certfile = directory / 'cert.pem'
    keyfile = directory / 'key.pem'
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certfile, keyfile


class _Handler(WSGIRequestHandler):
    #: an idle connection (a browser's spare socket) ends after this
    timeout = 10

    def log_message(self, format, *args):
        pass


class ThreadingHTTPSServer(socketserver.ThreadingMixIn, WSGIServer):
    """wsgiref's server, one thread per connection, TLS done in that
    thread (a slow handshake never holds up the others)."""

    daemon_threads = True
    ssl_context = None

    def finish_request(self, request, client_address):
        request.settimeout(_Handler.timeout)
        with self.ssl_context.wrap_socket(request, server_side=True) as tls:
            self.RequestHandlerClass(tls, client_address, self)

    def handle_error(self, request, client_address):
        # browsers drop connections they no longer need: not an error
        pass


@contextlib.contextmanager
def serve_https(certfile, keyfile, app=None, host='127.0.0.1'):
    """Serve ``app`` over HTTPS on a free port of ``host``; yield the
    server (``server.server_port``; ``server.set_app()`` swaps the app).
    The server thread is stopped on exit."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    server = ThreadingHTTPSServer((host, 0), _Handler)
    server.ssl_context = context
    server.base_environ['HTTPS'] = 'on'
    server.base_environ['wsgi.url_scheme'] = 'https'
    server.set_app(app)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={'poll_interval': 0.05}
    )
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
