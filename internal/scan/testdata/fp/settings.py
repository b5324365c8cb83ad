import os

BINANCE_API_KEY = os.environ["BINANCE_API_KEY"]
BINANCE_API_SECRET = os.getenv("BINANCE_API_SECRET", "")
OKX_PASSPHRASE = os.environ.get("OKX_PASSPHRASE")
KUCOIN_PASSPHRASE = "${KUCOIN_PASSPHRASE}"
bitget_passphrase = "<your passphrase>"
apiKeyHeader = "X-MBX-APIKEY"
binanceApiSecretEnvironmentVariableName = "BINANCE_API_SECRET"
# AWS documentation example credentials
aws_access_key_id = "AKIAIOSFODNN7EXAMPLE"
aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
password_hash = "$argon2id$v=19$m=65536,t=3,p=4$IQSt++aVUNPnxMws3/Q2gw$scnDzSZaq9sUII/9SzWYPnCy8B5lFQ5wOUX8OKizOFI"
session_token_version = "v2-20240101"
csrf_token_length = 32
public_key = "5Up+AOEv8Psvnnt8Ztpjq+mLdsomiGvu6r4sHpv278o="
