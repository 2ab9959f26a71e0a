"""crds_async.fetch"""
