"""Tests of ``convzoo.commands``, one file per command module (a package: its file names repeat others')."""
