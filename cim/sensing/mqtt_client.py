"""A paho-mqtt client tuned for a subscriber that receives tens of thousands of QoS 1 messages a second.

paho reads each packet with two or three ``recv`` calls (command byte, length bytes, body) and writes
each PUBACK as a packet of its own, waking its network thread for every one. This client reads the socket
256 KiB at a time (paho handles the buffered bytes through the socket's ``pending()``, as it does for TLS),
reads every packet already buffered in one pass of the network loop, and acknowledges a whole batch of
messages as one write (:meth:`FastClient.ack_many`). Everything else (the MQTT state machine, sessions,
reconnects) is paho's own; only paho's socket-level hooks (``_create_socket``, ``_packet_read``,
``_packet_queue``, stable through paho-mqtt 2.x) are used.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt

READ_CHUNK = 256 * 1024
_PUBACK = 0x40
_MAX_PACKETS_PER_READ = 2000  # then the loop writes (acks) and checks keep-alive before reading on


class BufferedSocket:
    """A connected socket whose ``recv`` serves paho's small reads from one large read."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, bufsize: int) -> bytes:
        """Up to ``bufsize`` bytes: buffered ones first, else one large read of the socket."""
        if self._pos >= len(self._buf):
            data = self._sock.recv(READ_CHUNK)  # BlockingIOError when nothing is there: paho waits
            if not data:
                return b""
            self._buf, self._pos = data, 0
        start = self._pos
        self._pos = min(start + bufsize, len(self._buf))
        return self._buf[start : self._pos]

    def pending(self) -> int:
        """Bytes read from the socket and not yet handed out (paho then reads without waiting)."""
        return len(self._buf) - self._pos

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class FastClient(mqtt.Client):
    """paho's client with buffered reads and batched acknowledgements (plain TCP transport only)."""

    def _create_socket(self) -> Any:
        sock = super()._create_socket()
        if self._ssl or self._transport != "tcp":
            return sock
        return BufferedSocket(sock)

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        """Read every complete packet already buffered (up to a bound), not only one."""
        rc = super().loop_read(max_packets)
        for _ in range(_MAX_PACKETS_PER_READ):
            sock = self._sock
            if rc != mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS or sock is None or not isinstance(sock, BufferedSocket):
                break
            if sock.pending() == 0:
                break
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == mqtt.MQTTErrorCode.MQTT_ERR_AGAIN:
                return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
        return rc

    def ack_many(self, mids: Sequence[int]) -> None:
        """Acknowledge QoS 1 messages (``manual_ack=True``) with one write of their PUBACK packets."""
        if not mids:
            return
        packet = struct.pack(f"!{len(mids)}I", *[(_PUBACK << 24) | (2 << 16) | m for m in mids])
        self._packet_queue(_PUBACK, packet, 0, 0)
