from skyrig import Bucket

receipts = Bucket("receipts", versioned=True)
email_assets = Bucket("email-assets", public=True)
