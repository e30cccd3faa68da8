"""One adapter per Python client; the shared scenarios in test_python_clients.py drive them."""
