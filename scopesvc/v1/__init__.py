"""Generated from proto/scopesvc/v1/scopesvc.proto by tools/gen_proto.py; do not edit."""
