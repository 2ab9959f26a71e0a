"""crds_async.headers"""
