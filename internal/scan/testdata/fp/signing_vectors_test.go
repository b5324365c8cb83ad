package binance

// Test vectors for the Binance HMAC signer, from the Binance API documentation.
var docVectors = []struct{ key, secret, payload, sig string }{
	{
		key:     "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
		secret:  "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
		payload: "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559",
		sig:     "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71",
	},
}

// kraken: the documentation's signing example.
const krakenDocSecret = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
const krakenDocSign = "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="

func TestSignBinanceFuturesVector(t *testing.T) {
	// test vector: futures docs
	secret := "CiX9LfecyB91WNKqkSe6OSL7669Bgis1Mpu8fw6ANju7FbmymQWPnRpIpSGXkQhY"
	_ = secret
}

// bybit fake credentials for the simulator tests
var bybitFake = map[string]string{"key": "Cu82lTis8udotzVWHP", "secret": "YiQZpJG0nyfvc9PLqfOW2SfzbznNQIUvZs77"}
