"""crds_async.rules"""
