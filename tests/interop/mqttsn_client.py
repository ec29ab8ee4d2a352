#!/usr/bin/env python3
"""Interop driver for the PyPI package ``mqtt-sn-12`` (import name ``mqttsn12``).

Used by the Rust integration tests to talk to our gateway with an independent MQTT-SN v1.2
client over UDP. It uses the library for CONNECT (with Will), REGISTER, SUBSCRIBE, PUBLISH at
QoS -1/0/1/2 (normal, short and predefined topic ids) and DISCONNECT, and the library's packet
classes for its own receive loop, because the library's ``polling()`` never acknowledges
incoming QoS 1 and ignores QoS 2 (see tests/src/README-interop.md).

Every run is bounded by ``--timeout`` (the library's blocking receives have no timeout).

  python3 tests/interop/mqttsn_client.py pub --port P --topic a/b --qos 1 --message hi
  python3 tests/interop/mqttsn_client.py sub --port P --topic a/# --qos 1 --count 2 --timeout 5

``sub`` prints one line per received message (``--format``: ``tsv`` = topic, qos, retain,
payload separated by tabs; ``json``; ``payload``). Exit status: 0 success, 1 error (rejected,
protocol), 2 timeout (``sub``: fewer than ``--count`` messages), 3 library not installed.
"""

import argparse
import json
import logging
import os
import signal
import socket
import sys
import time

try:
    from mqttsn12.MqttSnConstants import MqttSnConstants as C
    from mqttsn12.client.MqttSnClient import MqttSnClient
    from mqttsn12.client.MqttSnClientException import MqttSnClientException
    from mqttsn12.packets import (
        PingReqPacket,
        PubCompPacket,
        PublishPacket,
        PubRecPacket,
        PubRelPacket,
    )
except ImportError as error:  # pragma: no cover - depends on the environment
    print(
        f"mqttsn_client: cannot import mqttsn12 ({error}); "
        "install it with: python3 -m pip install mqtt-sn-12==1.0.9",
        file=sys.stderr,
    )
    sys.exit(3)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_TIMEOUT = 2

# Poll period of the receive loop.
RECV_SLICE = 0.05


class Deadline(BaseException):
    """Raised by SIGALRM; a BaseException so the library's ``except Exception`` cannot eat it."""


def _on_alarm(_signum, _frame):
    raise Deadline()


def arm_deadline(seconds):
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))


def disarm_deadline():
    signal.setitimer(signal.ITIMER_REAL, 0)


def log(message):
    print(f"mqttsn_client: {message}", file=sys.stderr, flush=True)


def topic_kind(args):
    """('predefined', id) | ('short', 'ab') | ('normal', name) for pub/sub topic options."""
    if args.topic_id is not None:
        return ("predefined", args.topic_id)
    if args.topic is None:
        raise SystemExit("mqttsn_client: --topic or --topic-id is required")
    if len(args.topic) == 2:
        # The library always sends 2-character names as short topic ids.
        return ("short", args.topic)
    return ("normal", args.topic)


def make_client(args):
    client = MqttSnClient()
    client.set_client_id(args.client_id or f"sn-py-{os.getpid()}")
    client.set_clean_session(not args.no_clean_session)
    client.set_keep_alive(args.keepalive)
    client.set_timeout(max(1, int(args.timeout)))
    if args.will_topic is not None:
        client.set_will(args.will_topic, args.will_message or "", args.will_qos, args.will_retain)
    client.open(args.host, args.port)
    return client


def cmd_pub(args):
    kind, topic = topic_kind(args)
    if args.qos == -1 and kind == "normal":
        # The library would send REGISTER without a connection and wait forever for REGACK.
        raise SystemExit("mqttsn_client: QoS -1 needs --topic-id or a 2-character short topic")
    payload = args.message if args.message is not None else ""
    client = make_client(args)
    try:
        if args.qos >= 0:
            client.send_connect()
        for i in range(args.count):
            if kind == "predefined":
                client.send_publish_predefined(topic, payload, args.qos, args.retain)
            else:
                client.send_publish(topic, payload, args.qos, args.retain)
            log(f"published {i + 1}/{args.count} to {topic} qos {args.qos}")
        if args.qos >= 0 and not args.no_disconnect:
            client.send_disconnect(args.sleep_duration)
    finally:
        close_socket(client)
    return EXIT_OK


def cmd_sub(args):
    topics = args.topic or []
    if not topics and args.topic_id is None:
        raise SystemExit("mqttsn_client: --topic or --topic-id is required")
    client = make_client(args)
    try:
        client.send_connect()
        for name in topics:
            # 2-character names become short topic ids; others are sent as names.
            client.send_subscribe(name, args.qos, None)
            log(f"subscribed to {name!r} qos {args.qos}")
        for topic_id in args.topic_id or []:
            client.send_subscribe_predefined(topic_id, args.qos, None)
            log(f"subscribed to predefined id {topic_id} qos {args.qos}")
        if args.ready_line:
            print("READY", flush=True)
        received = receive_loop(client, args)
        if not args.no_disconnect:
            client.send_disconnect(args.sleep_duration)
    finally:
        close_socket(client)
    return EXIT_OK if args.count is None or received >= args.count else EXIT_TIMEOUT


def receive_loop(client, args):
    """Receives until --count messages or the deadline; acks QoS 1/2; returns the count."""
    sock = client.datagram_socket
    end = time.monotonic() + args.listen_for if args.listen_for is not None else None
    received = 0
    awaiting_pubrel = set()  # QoS 2 message ids delivered, PUBREL not yet seen
    # After the last wanted message, keep going until its QoS 2 flow is complete (PUBREL).
    while args.count is None or received < args.count or awaiting_pubrel:
        if end is not None and time.monotonic() >= end:
            break
        maybe_ping(client)
        sock.setblocking(True)
        sock.settimeout(RECV_SLICE)
        try:
            data, _addr = sock.recvfrom(C.MAX_PACKET_LENGTH_EXTENDED)
        except socket.timeout:
            continue
        client.last_receive = int(time.time())
        msg_type = data[3] if data[0] == 1 else data[1]
        if msg_type == C.TYPE_REGISTER:
            client.process_register(data)  # stores the topic name, sends REGACK
        elif msg_type == C.TYPE_PUBLISH:
            packet = PublishPacket()
            packet.decode(data)
            qos = packet.get_qos()
            message_id = packet.get_message_id()
            if qos == 1:
                client.send_puback(packet, C.ACCEPTED)
            elif qos == 2:
                rec = PubRecPacket()
                rec.set_message_id(message_id)
                client.send_packet(rec.encode())
                if message_id in awaiting_pubrel:
                    continue  # duplicate of a QoS 2 message already delivered
                awaiting_pubrel.add(message_id)
            emit(client, packet, args.format)
            received += 1
        elif msg_type == C.TYPE_PUBREL:
            rel = PubRelPacket()
            rel.decode(data)
            awaiting_pubrel.discard(rel.get_message_id())
            comp = PubCompPacket()
            comp.set_message_id(rel.get_message_id())
            client.send_packet(comp.encode())
        elif msg_type == C.TYPE_DISCONNECT:
            log("gateway sent DISCONNECT")
            args.no_disconnect = True
            break
        # PINGRESP and anything else: ignored.
    return received


def maybe_ping(client):
    if client.keep_alive > 0 and int(time.time()) - client.last_transmit >= client.keep_alive:
        client.send_packet(PingReqPacket().encode())


def emit(client, packet, fmt):
    topic_type = packet.get_topic_type_id()
    topic_id = packet.get_topic_id()
    if topic_type == C.TOPIC_TYPE_SHORT:
        topic = topic_id.to_bytes(2, "big").decode("ascii", "replace")
    elif topic_type == C.TOPIC_TYPE_PREDEFINED:
        topic = f"predefined:{topic_id}"
    else:
        topic = client.topic_map.get(topic_id) or f"unknown:{topic_id}"
    payload = bytes(packet.get_data() or b"")
    text = payload.decode("utf-8", "replace")
    if fmt == "payload":
        line = text
    elif fmt == "json":
        line = json.dumps(
            {
                "topic": topic,
                "topic_id": topic_id,
                "topic_type": topic_type,
                "qos": packet.get_qos(),
                "retain": packet.get_retain(),
                "dup": packet.get_dup(),
                "message_id": packet.get_message_id(),
                "payload": text,
                "payload_hex": payload.hex(),
            }
        )
    else:
        line = f"{topic}\t{packet.get_qos()}\t{int(packet.get_retain())}\t{text}"
    print(line, flush=True)


def close_socket(client):
    try:
        client.close()
    except Exception:  # noqa: BLE001 - best effort on the way out
        pass


def parser():
    p = argparse.ArgumentParser(
        prog="mqttsn_client.py",
        description="MQTT-SN v1.2 interop driver on the mqtt-sn-12 library (UDP).",
    )
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp):
        sp.add_argument("--host", default="127.0.0.1", help="gateway host (default 127.0.0.1)")
        sp.add_argument("--port", type=int, required=True, help="gateway UDP port")
        sp.add_argument("--client-id", help="client id (default sn-py-<pid>, max 23 chars)")
        sp.add_argument("--keepalive", type=int, default=30, help="keep-alive seconds (0 = off)")
        sp.add_argument(
            "--no-clean-session", action="store_true", help="CONNECT without CleanSession"
        )
        sp.add_argument("--timeout", type=float, default=10.0, help="overall bound in seconds")
        sp.add_argument("--will-topic", help="Will topic (enables the Will handshake)")
        sp.add_argument("--will-message", help="Will message")
        sp.add_argument("--will-qos", type=int, choices=[0, 1, 2], default=0)
        sp.add_argument("--will-retain", action="store_true")
        sp.add_argument(
            "--sleep-duration",
            type=int,
            default=0,
            help="DISCONNECT with this duration (seconds): enter the asleep state",
        )
        sp.add_argument(
            "--no-disconnect", action="store_true", help="exit without sending DISCONNECT"
        )
        sp.add_argument("--debug", action="store_true", help="library debug log on stderr")

    pub = sub.add_parser("pub", help="connect, publish, disconnect")
    common(pub)
    pub.add_argument("--topic", help="topic name (2 characters = short topic id)")
    pub.add_argument("--topic-id", type=int, help="predefined topic id (instead of --topic)")
    pub.add_argument("--qos", type=int, choices=[-1, 0, 1, 2], default=0)
    pub.add_argument("--message", help="payload (UTF-8 text; default empty)")
    pub.add_argument("--retain", action="store_true")
    pub.add_argument("--count", type=int, default=1, help="publish the message N times")
    pub.set_defaults(func=cmd_pub)

    s = sub.add_parser("sub", help="connect, subscribe, print received messages")
    common(s)
    s.add_argument(
        "--topic", action="append", help="topic filter; repeatable (2 characters = short id)"
    )
    s.add_argument(
        "--topic-id", type=int, action="append", help="predefined topic id; repeatable"
    )
    s.add_argument("--qos", type=int, choices=[0, 1, 2], default=0)
    s.add_argument("--count", type=int, help="exit after N messages (exit 2 if not reached)")
    s.add_argument(
        "--listen-for", type=float, help="stop listening after S seconds (default: --timeout)"
    )
    s.add_argument("--format", choices=["tsv", "json", "payload"], default="tsv")
    s.add_argument(
        "--ready-line", action="store_true", help="print READY on stdout once subscribed"
    )
    s.set_defaults(func=cmd_sub)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    logging.getLogger().setLevel(logging.DEBUG if args.debug else logging.CRITICAL)
    if args.debug and not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.DEBUG)
    if args.command == "sub" and args.listen_for is None:
        # Leave a little of the overall bound for DISCONNECT.
        args.listen_for = max(args.timeout - 0.5, 0.1)
    arm_deadline(args.timeout)
    try:
        return args.func(args)
    except Deadline:
        log(f"timed out after {args.timeout} s")
        return EXIT_TIMEOUT
    except (MqttSnClientException, OSError, ValueError) as error:
        log(f"error: {error}")
        return EXIT_ERROR
    finally:
        disarm_deadline()


if __name__ == "__main__":
    sys.exit(main())
