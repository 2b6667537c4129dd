"""Writes the IP packets of a classic Ethernet pcap to a tun interface, as a VPN would deliver them.

python3 tun-write.py IFACE FILE: attaches to the (persistent) tun IFACE without packet information
(IFF_TUN | IFF_NO_PI), writes each IPv4 and IPv6 packet of FILE without its Ethernet header, and prints how
many it wrote. Node.js has no ioctl; this is the tests' only way to be a tun interface's other end.
"""
import fcntl
import os
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

name, path = sys.argv[1], sys.argv[2]
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode(), IFF_TUN | IFF_NO_PI))
data = open(path, 'rb').read()
order = '<' if data[:4] == b'\xd4\xc3\xb2\xa1' else '>'
if struct.unpack(order + 'I', data[:4])[0] != 0xA1B2C3D4 or struct.unpack(order + 'I', data[20:24])[0] != 1:
    sys.exit(f'{path}: not a classic Ethernet pcap (microseconds)')
offset, written = 24, 0
while offset + 16 <= len(data):
    _, _, included, _ = struct.unpack(order + 'IIII', data[offset:offset + 16])
    frame = data[offset + 16:offset + 16 + included]
    offset += 16 + included
    if len(frame) > 14 and frame[12:14] in (b'\x08\x00', b'\x86\xdd'):
        os.write(fd, frame[14:])
        written += 1
print(written)
