from skyrig import Secret

stripe_api_key = Secret("stripe-api-key")
