"""crds_async.instruments"""
