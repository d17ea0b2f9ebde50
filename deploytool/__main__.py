from deploytool.cli import entry

entry()
