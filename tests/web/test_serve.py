"""The listening socket: connections it accepts send small writes at once (no Nagle delay)."""
import socket

from isegm.web.serve import listening_socket


def test_accepted_connections_have_nagle_off():
    with listening_socket("127.0.0.1", 0) as server:
        port = server.getsockname()[1]
        assert port > 0
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
                client.sendall(b"ping")
                assert accepted.recv(4) == b"ping"
