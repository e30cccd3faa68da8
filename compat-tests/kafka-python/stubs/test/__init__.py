"""Ours: the kafka-python sdist ships test/ without this package marker."""
