#!/usr/bin/env python3
"""Writes a C file defining `const char <name>[]` with the contents of a text file."""
import sys

src, out, name = sys.argv[1:4]
text = open(src, encoding="utf-8").read()
with open(out, "w", encoding="utf-8") as f:
    f.write("/* Generated from %s by embed-idl.py. */\n" % src.split("/")[-1])
    f.write("const char %s[] =\n" % name)
    for line in text.splitlines(True):
        esc = line.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        f.write('        "%s"\n' % esc)
    f.write("        ;\n")
