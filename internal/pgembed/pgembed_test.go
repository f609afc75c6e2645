package pgembed_test
import ("context";"testing";"time";"github.com/fluxbridge/fluxbridge/internal/pgembed";"github.com/jackc/pgx/v5")
func TestStartStop(t *testing.T){
 t0:=time.Now()
 s,err:=pgembed.Start(context.Background(), pgembed.Options{})
 if err!=nil{t.Fatal(err)}
 t.Log("start", time.Since(t0), s.URL(""))
 c,err:=pgx.Connect(context.Background(), s.URL(""))
 if err!=nil{t.Fatal(err)}
 var v string; c.QueryRow(context.Background(),"select version()").Scan(&v); t.Log(v); c.Close(context.Background())
 t1:=time.Now(); s.Stop(); t.Log("stop", time.Since(t1))
}
